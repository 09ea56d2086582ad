# The KafkaJS conformance driver.
#   docker build -f docker/driver-kafkajs.Dockerfile -t klite-driver-kafkajs .
FROM node:20-slim
RUN apt-get update && apt-get install -y --no-install-recommends make && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY clients/internal clients/internal
COPY clients/kafkajs clients/kafkajs
RUN make -C clients/kafkajs
ENTRYPOINT ["node", "clients/kafkajs/driver.js"]
