"""A self-contained HTML report for auditors, with inline SVG charts."""
