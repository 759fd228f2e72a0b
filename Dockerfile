# One image for every labeltrail process (see docker-compose.yml).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
COPY schemas ./schemas
COPY projections ./projections
COPY services ./services
ARG EXTRAS=score
RUN pip install --no-cache-dir -e ".[${EXTRAS}]"
ENV PYTHONUNBUFFERED=1
CMD ["labeltrail", "--help"]
