# The kcat (librdkafka CLI) conformance driver.
#   docker build -f docker/driver-kcat.Dockerfile -t klite-driver-kcat .
FROM debian:12-slim
RUN apt-get update && apt-get install -y --no-install-recommends kcat python3 make golang-go ca-certificates \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY clients/kcat clients/kcat
RUN make -C clients/kcat
ENTRYPOINT ["sh", "-c", "exec $(python3 -c 'import json;print(\" \".join(json.load(open(\"clients/kcat/driver.json\"))[\"run\"]))')"]
