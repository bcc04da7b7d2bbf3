# One image for the four services, the lag exporter and cafctl; the command picks the process.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 CAF_HEALTH_HOST=0.0.0.0
WORKDIR /app
COPY pyproject.toml README.md ./
COPY caf_runtime caf_runtime
COPY schemas schemas
COPY services services
COPY cafctl cafctl
COPY devstack devstack
RUN pip install --no-cache-dir . && useradd --uid 10001 --no-create-home caf
USER 10001
EXPOSE 8080
CMD ["python", "-m", "services.intake"]
