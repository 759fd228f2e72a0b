# One image for every labeltrail process (see docker-compose.yml).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
COPY schemas ./schemas
COPY projections ./projections
COPY services ./services
COPY ops/docker ./ops/docker
ARG EXTRAS=score
# The native event codec (native/) is not built here: the image has no Rust toolchain, so the
# codec runs its pure-Python path, with the same bytes and events (docs/streaming.md).
RUN pip install --no-cache-dir -e ".[${EXTRAS}]"
ENV PYTHONUNBUFFERED=1
CMD ["labeltrail", "--help"]
