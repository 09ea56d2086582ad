# The Java conformance drivers (java = kafka-clients, spring-kafka).
#   docker build -f docker/driver-java.Dockerfile --build-arg DRIVER=java -t klite-driver-java .
FROM maven:3.9-eclipse-temurin-17
ARG DRIVER=java
WORKDIR /src
COPY clients/${DRIVER} clients/${DRIVER}
RUN make -C clients/${DRIVER}
ENV DRIVER=${DRIVER}
ENTRYPOINT ["sh", "-c", "exec java -jar clients/${DRIVER}/target/driver.jar"]
