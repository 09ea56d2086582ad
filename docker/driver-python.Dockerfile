# The Python conformance drivers (confluent-kafka-python, kafka-python).
#   docker build -f docker/driver-python.Dockerfile --build-arg DRIVER=kafka-python -t klite-driver-kafka-python .
FROM python:3.11-slim
ARG DRIVER=kafka-python
RUN apt-get update && apt-get install -y --no-install-recommends make && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY clients/internal clients/internal
COPY clients/${DRIVER} clients/${DRIVER}
RUN make -C clients/${DRIVER}
ENV DRIVER=${DRIVER}
ENTRYPOINT ["sh", "-c", "exec clients/${DRIVER}/.venv/bin/python clients/${DRIVER}/driver.py"]
