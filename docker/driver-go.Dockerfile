# A Go conformance driver (franz-go, sarama, confluent-kafka-go, kafka-go).
#   docker build -f docker/driver-go.Dockerfile --build-arg DRIVER=sarama -t klite-driver-sarama .
FROM golang:1.26
ARG DRIVER=franz-go
WORKDIR /src
COPY . .
RUN make -C clients/${DRIVER}
ENV DRIVER=${DRIVER}
ENTRYPOINT ["sh", "-c", "exec clients/${DRIVER}/bin/driver"]
