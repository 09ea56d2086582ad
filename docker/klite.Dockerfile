# klite: a static binary in a minimal image.
#   docker build -f docker/klite.Dockerfile -t klite .
#   docker run -p 9092:9092 -e KLITE_ADVERTISED_ADDR=localhost:9092 -v klite-data:/data klite
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY broker ./broker
COPY cmd ./cmd
ARG VERSION=devel
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -X main.buildVersion=${VERSION}" -o /out/klite ./cmd/klite

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/klite /klite
VOLUME /data
EXPOSE 9092
ENV KLITE_LISTEN=:9092 KLITE_DATA_DIR=/data
ENTRYPOINT ["/klite"]
