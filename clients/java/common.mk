# Build rules shared by the java and spring-kafka drivers (included by both Makefiles, which
# set NAME and SRC first).
MVN  ?= mvn -q -B -Dstyle.color=never
JAVA ?= java
JAR  := target/driver.jar
JSA  := target/driver.jsa
ROOT := $(abspath $(CURDIR)/../..)
# Same flags as driver.json's run, so the archive matches; JVM warnings go to stderr.
JVMFLAGS := -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Xlog:disable -Xlog:all=warning:stderr

all: $(JAR) $(JSA)

$(JAR): pom.xml $(SRC)
	$(MVN) package
	@touch $@

# The archive names the jar as the run does (relative to the repository root). A failed
# training run is not fatal: the driver then starts without the archive, only slower.
$(JSA): $(JAR)
	@rm -f $@
	cd $(ROOT) && $(JAVA) $(JVMFLAGS) -XX:ArchiveClassesAtExit=clients/$(NAME)/$(JSA) \
		-jar clients/$(NAME)/$(JAR) --warmup 2>/dev/null || rm -f $@

clean:
	rm -rf target

.PHONY: all clean
