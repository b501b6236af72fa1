#!/usr/bin/env bash
# Local development stack, run natively (there is no Docker engine on our machines):
#   kafka     Apache Kafka, KRaft, one combined broker+controller   127.0.0.1:9092 (controller :9093)
#             also SASL_SSL (SCRAM-SHA-512 and PLAIN) on :9094 and mutual TLS on :9095, with a
#             throwaway CA and credentials under .stack/tls/ (see "security" below)
#   registry  Apicurio Registry, SQL storage in the stack's Postgres  http://127.0.0.1:8081
#             (database registry), so schemas and their ids live as long as Kafka's records
#   postgres  PostgreSQL 15 (Debian packages), db demo, admin/admin  127.0.0.1:5432
# All state, pid files and logs live under <repo>/.stack/ (git-ignored).
#
# Usage: stack/stack.sh up | down | status | is-up | stop SERVICE | kill SERVICE | wipe-kafka
#   up      start whatever is not running yet, wait until each service answers (idempotent)
#   down    stop what this script started (recorded in .stack/run/*.pid)
#   status  one line per service: up/down, pid, address
#   is-up   exit 0 when all three answer, 1 otherwise; prints nothing
# For fault injection (make faults), one service at a time; `up` starts it again:
#   stop SERVICE   stop kafka, registry or postgres as `down` would
#   kill SERVICE   SIGKILL it (postgres: its postmaster, then pg_ctl's immediate stop of what is left)
#   wipe-kafka     stop Kafka and delete its data: the next `up` starts a new, empty cluster (new cluster id)
#
# Versions have one home each: Kafka and Apicurio in stack/pom.xml (kafka.version,
# apicurio.version); PostgreSQL is the major version of the Debian package (PG_MAJOR below).
# The first `up` downloads from Maven Central (into ~/.m2); later ones reuse what is in .stack/.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$SCRIPT_DIR/.." && pwd)
POM=$SCRIPT_DIR/pom.xml
STACK_DIR=$REPO_DIR/.stack
RUN_DIR=$STACK_DIR/run
LOG_DIR=$STACK_DIR/logs

HOST=127.0.0.1
KAFKA_PORT=9092
KAFKA_CONTROLLER_PORT=9093
KAFKA_SASL_SSL_PORT=9094   # SASL_SSL: SCRAM-SHA-512 and PLAIN, user and password in .stack/tls/credentials
KAFKA_MTLS_PORT=9095       # SSL with a client certificate required (.stack/tls/client.pem, client.key)
REGISTRY_PORT=8081
# Quarkus' management interface (health, metrics) is compiled into the registry; keep it off
# its default 0.0.0.0:9000 so the stack binds loopback only and avoids a commonly used port.
REGISTRY_MGMT_PORT=9081
PG_PORT=5432
PG_MAJOR=15

# How long `up` waits for each service to answer (seconds); overridable from the environment.
KAFKA_TIMEOUT=${KAFKA_TIMEOUT:-120}
REGISTRY_TIMEOUT=${REGISTRY_TIMEOUT:-120}
PG_TIMEOUT=${PG_TIMEOUT:-60}
# How long `down` waits after SIGTERM before SIGKILL.
STOP_TIMEOUT=${STOP_TIMEOUT:-20}

KAFKA_DIR=$STACK_DIR/kafka
KAFKA_DATA=$KAFKA_DIR/data
KAFKA_PROPS=$KAFKA_DIR/server.properties
KAFKA_CLASSPATH_FILE=$STACK_DIR/kafka.classpath
REGISTRY_BASE=$STACK_DIR/apicurio
PG_BIN=${PG_BIN:-/usr/lib/postgresql/$PG_MAJOR/bin}
PG_DIR=$STACK_DIR/postgres
PG_DATA=$PG_DIR/data
PG_SOCK=$PG_DIR/socket   # unix socket here, not /var/run/postgresql (shared with the system cluster)
TLS_DIR=$STACK_DIR/tls
REGISTRY_DB=registry     # the registry's storage, a database of the stack's Postgres

SERVICES=(kafka registry postgres)

# ---------------------------------------------------------------------------------------------
# small helpers

say() { printf '%s\n' "$*"; }
die() { printf 'stack: %s\n' "$*" >&2; exit 1; }
rel() { printf '%s' "${1#"$REPO_DIR"/}"; }   # shorter paths in messages

# Read a <property> from stack/pom.xml, so versions are not repeated here.
pom_prop() {
  local v
  v=$(sed -n "s:.*<$1>[[:space:]]*\([^<[:space:]]*\)[[:space:]]*</$1>.*:\1:p" "$POM" | head -n1)
  [[ -n $v ]] || die "property <$1> not found in $(rel "$POM")"
  printf '%s' "$v"
}

is_root() { [[ $(id -u) -eq 0 ]]; }

# PostgreSQL refuses to run as root: as root, run its tools as the `postgres` user; as anybody
# else, run them as that user (who then owns the data directory).
as_pg() {
  if is_root; then runuser -u postgres -- "$@"; else "$@"; fi
}

# A pid is alive if it exists and is not a zombie (our services are re-parented to init, which
# may not reap them promptly).
alive() {
  local pid=$1 state
  [[ -r /proc/$pid/stat ]] || return 1
  state=$(sed -n 's/^.*) \(.\).*$/\1/p' "/proc/$pid/stat" 2>/dev/null) || return 1
  [[ -n $state && $state != Z ]]
}

# Text that must appear in a service's command line. Guards against a stale pid file whose pid
# the kernel has since handed to an unrelated process.
marker() {
  case $1 in
    kafka) printf '%s' "kafka.Kafka $KAFKA_PROPS" ;;
    registry) printf '%s' "quarkus-run.jar" ;;
    postgres) printf '%s' "$PG_DATA" ;;
  esac
}

# Prints the pid of our running instance of a service and succeeds, or fails (removing a stale
# pid file on the way).
our_pid() {
  local svc=$1 pidfile=$RUN_DIR/$1.pid pid cmd
  [[ -f $pidfile ]] || return 1
  pid=$(tr -dc '0-9' <"$pidfile")
  if [[ -n $pid ]] && alive "$pid"; then
    cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)
    if [[ $cmd == *"$(marker "$svc")"* ]]; then
      printf '%s' "$pid"
      return 0
    fi
  fi
  rm -f "$pidfile"
  return 1
}

port_open() {
  timeout 2 bash -c "exec 3<>/dev/tcp/$HOST/$1" 2>/dev/null
}

# Who listens on a port (best effort, for the "port taken" message).
port_owner() {
  local out=""
  if command -v ss >/dev/null; then
    out=$(ss -Hltnp "sport = :$1" 2>/dev/null | sed -n 's/.*users:((\(.*\)))/\1/p' | head -n1)
  fi
  printf '%s' "${out:-unknown process}"
}

# ---------------------------------------------------------------------------------------------
# "does it answer" probes; cheap enough for `is-up`

# Kafka: send an ApiVersions v0 request over bash's /dev/tcp and check that the reply carries our
# correlation id. This proves the broker processes requests (the listener only accepts once the
# broker has caught up with the metadata log) without starting a JVM.
kafka_answers() {
  timeout 3 bash -c "
    exec 3<>/dev/tcp/$HOST/$KAFKA_PORT
    printf '\x00\x00\x00\x0a\x00\x12\x00\x00\x4b\x41\x46\x4b\xff\xff' >&3
    head -c 8 <&3 | od -An -tx1 | tr -d ' \n'
  " 2>/dev/null | grep -Eq '^[0-9a-f]{8}4b41464b$'
}

registry_answers() {
  curl -sf -o /dev/null --max-time 3 "http://$HOST:$REGISTRY_PORT/apis/ccompat/v7/subjects"
}

pg_answers() {
  "$PG_BIN/pg_isready" -q -h "$HOST" -p "$PG_PORT" -t 3 >/dev/null 2>&1
}

answers() {
  case $1 in
    kafka) kafka_answers ;;
    registry) registry_answers ;;
    postgres) pg_answers ;;
  esac
}

# ---------------------------------------------------------------------------------------------
# preparation (downloads happen here, once)

need_java() {
  command -v java >/dev/null || die "java not found on PATH (Kafka needs Java 17+; apt-get install openjdk-17-jre-headless)"
  local home
  home=$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")
  if [[ -f $home/release ]] && (($(java_major "$home") < 17)); then
    die "the java on PATH ($home) is older than 17, which Kafka needs"
  fi
}

need_mvn() {
  command -v mvn >/dev/null || die "mvn not found on PATH; it is needed once to fetch Kafka/Apicurio from Maven Central (apt-get install maven)"
}

# Major Java version of a JDK/JRE home, from its `release` file.
java_major() {
  local v
  v=$(sed -n 's/^JAVA_VERSION="\([0-9]*\).*/\1/p' "$1/release" 2>/dev/null | head -n1)
  printf '%s' "${v:-0}"
}

# Apicurio Registry 3.x is compiled for Java 21, while the default java here is 17. Use, in
# order: $REGISTRY_JAVA_HOME, $JAVA_HOME, the java on PATH, else the newest JDK in /usr/lib/jvm
# (our machines ship a Temurin JDK there beside the Debian OpenJDK).
registry_java() {
  local home best="" best_v=0 v
  for home in "${REGISTRY_JAVA_HOME:-}" "${JAVA_HOME:-}" \
      "$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")"; do
    [[ -n $home && -x $home/bin/java ]] || continue
    if (($(java_major "$home") >= 21)); then printf '%s' "$home/bin/java"; return 0; fi
  done
  for home in /usr/lib/jvm/*/; do
    home=${home%/}
    [[ -x $home/bin/java ]] || continue
    v=$(java_major "$home")
    if ((v > best_v)); then best_v=$v; best=$home; fi
  done
  ((best_v >= 21)) || die "Apicurio Registry needs Java 21+; none found (set REGISTRY_JAVA_HOME)"
  printf '%s' "$best/bin/java"
}

# Kafka's runtime classpath, resolved by Maven from stack/pom.xml. Reused while the pom is
# unchanged and every jar is still in the local repository; otherwise resolved again.
kafka_classpath() {
  local sum stamp=$KAFKA_CLASSPATH_FILE.pomsum ok=1 jar jars=()
  sum=$(sha256sum "$POM" | cut -d' ' -f1)
  if [[ -s $KAFKA_CLASSPATH_FILE && -f $stamp && $(cat "$stamp") == "$sum" ]]; then
    IFS=: read -ra jars <"$KAFKA_CLASSPATH_FILE" || true   # the file has no final newline
    for jar in "${jars[@]}"; do [[ -f $jar ]] || { ok=0; break; }; done
  else
    ok=0
  fi
  if ((ok == 0)); then
    need_mvn
    say "kafka: resolving Kafka $(pom_prop kafka.version) with Maven (first run only; log: $(rel "$LOG_DIR")/mvn-kafka.log)" >&2
    mvn -B -q -f "$POM" dependency:build-classpath -Dmdep.outputFile="$KAFKA_CLASSPATH_FILE.tmp" \
      >"$LOG_DIR/mvn-kafka.log" 2>&1 9>&- ||
      die "Maven could not resolve Kafka; see $(rel "$LOG_DIR")/mvn-kafka.log"
    mv "$KAFKA_CLASSPATH_FILE.tmp" "$KAFKA_CLASSPATH_FILE"
    printf '%s\n' "$sum" >"$stamp"
  fi
  cat "$KAFKA_CLASSPATH_FILE"
}

# The registry's Quarkus fast-jar, unpacked once per version under .stack/apicurio/<version>/.
# Central has the release distribution as io.apicurio:apicurio-registry-app:<v>:tar.gz:all
# (there is no zip of it for 3.x).
registry_jar() {
  local version dir jar tarball
  version=$(pom_prop apicurio.version)
  dir=$REGISTRY_BASE/$version
  if [[ ! -f $dir/.unpacked ]]; then
    need_mvn
    say "registry: fetching Apicurio Registry $version with Maven (first run only; log: $(rel "$LOG_DIR")/mvn-registry.log)" >&2
    mvn -B -q dependency:copy -Dartifact="io.apicurio:apicurio-registry-app:$version:tar.gz:all" \
      -DoutputDirectory="$STACK_DIR/dl" >"$LOG_DIR/mvn-registry.log" 2>&1 9>&- ||
      die "Maven could not fetch Apicurio Registry $version; see $(rel "$LOG_DIR")/mvn-registry.log"
    tarball=$STACK_DIR/dl/apicurio-registry-app-$version-all.tar.gz
    rm -rf "$dir.tmp" "$dir"
    mkdir -p "$dir.tmp"
    tar -xzf "$tarball" -C "$dir.tmp"
    mv "$dir.tmp" "$dir"
    rm -f "$tarball"   # Maven keeps its own copy in ~/.m2
    touch "$dir/.unpacked"
  fi
  jar=$(find "$dir" -name quarkus-run.jar -print -quit)
  [[ -n $jar ]] || die "no quarkus-run.jar under $(rel "$dir"); remove that directory and retry"
  printf '%s' "$jar"
}

# ---------------------------------------------------------------------------------------------
# starting

# Start a long-running process detached from this shell (own session, so closing the terminal
# or the caller's process group does not take it down). The process writes its own pid file
# before exec'ing, so the recorded pid is the service's pid itself.
launch() {
  local svc=$1 log=$2 cwd=$3 i
  shift 3
  rm -f "$RUN_DIR/$svc.pid"
  # shellcheck disable=SC2016  # $$ and $@ are for the inner bash
  (cd "$cwd" && exec setsid bash -c 'echo $$ >"$0"; exec "$@"' "$RUN_DIR/$svc.pid" "$@" \
    >>"$log" 2>&1 </dev/null 9>&-) &
  for i in $(seq 50); do [[ -s $RUN_DIR/$svc.pid ]] && return 0; sleep 0.1; done
  die "$svc: failed to launch; see $(rel "$log")"
}

# Refuse to start a service whose port something else already holds.
check_ports_free() {
  local svc=$1 port
  shift
  for port in "$@"; do
    if port_open "$port"; then
      say "$svc: port $HOST:$port is already in use by a process this script did not start ($(port_owner "$port")); free it and run up again" >&2
      return 1
    fi
  done
}

# Class-data-sharing archive for the broker JVM: later starts with the same JDK and classpath
# take ~40% less time. Java 17 has no auto-create mode, so: use the archive when it exists,
# otherwise ask the JVM to write it when it exits (on `down`). Keyed by classpath and JDK, so an
# upgrade of either starts a new one instead of leaving the JVM to ignore a stale archive.
kafka_cds_opt() {
  local java_home key arch
  java_home=$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")
  key=$({ printf '%s\n' "$1" "$java_home"; cat "$java_home/release" 2>/dev/null || true; } |
    sha256sum | cut -c1-12)
  arch=$KAFKA_DIR/cds-$key.jsa
  if [[ -s $arch ]]; then
    printf '%s' "-XX:SharedArchiveFile=$arch"
  else
    rm -f "$KAFKA_DIR"/cds-*.jsa
    printf '%s' "-XX:ArchiveClassesAtExit=$arch"
  fi
}

# ---------------------------------------------------------------------------------------------
# security: the material the SASL_SSL and mutual-TLS listeners use, made once under .stack/tls/
#   ca.pem                  the throwaway CA that signed everything here (clients trust it)
#   broker-keystore.pem     the broker's key and certificate (SAN 127.0.0.1 and localhost)
#   client.pem, client.key  a client certificate for the mutual-TLS listener (CN datagen)
#   credentials             username=... and password=... for SCRAM-SHA-512 and PLAIN
# Keys are unencrypted PKCS#8 files readable by their owner only; nothing here leaves the machine.

make_tls() {
  [[ -s $TLS_DIR/credentials && -s $TLS_DIR/client.pem ]] && return 0
  command -v openssl >/dev/null || die "openssl not found on PATH (needed once, for the stack's throwaway CA)"
  rm -rf "$TLS_DIR.tmp"
  mkdir -p "$TLS_DIR.tmp"
  # One chain of &&: a subshell tested with || runs without set -e, and a failed step must not go unnoticed.
  (
    umask 077 && cd "$TLS_DIR.tmp" &&
      openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 3650 \
        -subj "/CN=retail-datagen local stack CA" &&
      openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out broker.key &&
      openssl req -new -key broker.key -out broker.csr -subj "/CN=localhost" &&
      printf 'subjectAltName=IP:%s,DNS:localhost\n' "$HOST" >broker.ext &&
      openssl x509 -req -in broker.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 \
        -extfile broker.ext -out broker.pem &&
      cat broker.key broker.pem >broker-keystore.pem &&
      openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out client.key &&
      openssl req -new -key client.key -out client.csr -subj "/CN=datagen" &&
      openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 -out client.pem &&
      openssl verify -CAfile ca.pem broker.pem client.pem &&
      printf 'username=datagen\npassword=%s\n' "$(openssl rand -hex 16)" >credentials &&
      rm -f ./*.csr ./*.ext ./*.srl
  ) >"$LOG_DIR/tls.log" 2>&1 9>&- || die "making the stack's TLS material failed; see $(rel "$LOG_DIR")/tls.log"
  chmod 644 "$TLS_DIR.tmp/ca.pem"
  rm -rf "$TLS_DIR"
  mv "$TLS_DIR.tmp" "$TLS_DIR"
}

credential() { sed -n "s/^$1=//p" "$TLS_DIR/credentials"; }

# The SCRAM credential lives in the cluster's metadata: created with Kafka's own ConfigCommand over the plaintext
# listener once the broker answers, and again whenever .stack/tls/credentials changed (the marker holds its hash).
# (ConfigCommand's --add-config-file turns the key's dashes into underscores, which it then refuses: the throwaway
# password goes on the command line.)
ensure_scram_user() {
  local marker=$KAFKA_DATA/.scram-user sum
  sum=$(sha256sum "$TLS_DIR/credentials" | cut -d' ' -f1)
  [[ -f $marker && $(cat "$marker") == "$sum" ]] && return 0
  java -cp "$(cat "$KAFKA_CLASSPATH_FILE")" org.apache.kafka.tools.ConfigCommand \
    --bootstrap-server "$HOST:$KAFKA_PORT" --alter --entity-type users --entity-name "$(credential username)" \
    --add-config "SCRAM-SHA-512=[iterations=8192,password=$(credential password)]" \
    >>"$LOG_DIR/kafka.out.log" 2>&1 9>&- || return 1
  printf '%s\n' "$sum" >"$marker"
}

start_kafka() {
  local cp cluster_id
  cp=$(kafka_classpath)
  make_tls
  mkdir -p "$KAFKA_DATA"
  # Rewritten on every start so edits here take effect; the data directory is kept. It holds the PLAIN
  # password, so it is made anew, readable by its owner only.
  rm -f "$KAFKA_PROPS"
  (umask 077 && : >"$KAFKA_PROPS")
  cat >"$KAFKA_PROPS" <<EOF
# Generated by stack/stack.sh; edits are overwritten on the next \`up\`.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$HOST:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://$HOST:$KAFKA_PORT,CONTROLLER://$HOST:$KAFKA_CONTROLLER_PORT,SASL_SSL://$HOST:$KAFKA_SASL_SSL_PORT,MTLS://$HOST:$KAFKA_MTLS_PORT
advertised.listeners=PLAINTEXT://$HOST:$KAFKA_PORT,SASL_SSL://$HOST:$KAFKA_SASL_SSL_PORT,MTLS://$HOST:$KAFKA_MTLS_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,MTLS:SSL
# TLS for the SASL_SSL and MTLS listeners, from .stack/tls/ (PEM files, no Java keystores).
ssl.keystore.type=PEM
ssl.keystore.location=$TLS_DIR/broker-keystore.pem
ssl.truststore.type=PEM
ssl.truststore.location=$TLS_DIR/ca.pem
listener.name.mtls.ssl.client.auth=required
listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-512,PLAIN
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$(credential username)="$(credential password)";
log.dirs=$KAFKA_DATA
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
# Single node: internal topics cannot have more than one replica.
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# Consumers join immediately instead of waiting 3 s for more members.
group.initial.rebalance.delay.ms=0
# The application creates its own topics; typos should fail instead of creating topics.
auto.create.topics.enable=false
EOF
  # Format the KRaft storage once (meta.properties marks a formatted log dir).
  if [[ ! -f $KAFKA_DATA/meta.properties ]]; then
    cluster_id=$(java -cp "$cp" kafka.tools.StorageTool random-uuid 2>>"$LOG_DIR/kafka.out.log")
    java -cp "$cp" kafka.tools.StorageTool format -t "$cluster_id" -c "$KAFKA_PROPS" \
      >>"$LOG_DIR/kafka.out.log" 2>&1 ||
      die "kafka: formatting the storage failed; see $(rel "$LOG_DIR")/kafka.out.log"
  fi
  launch kafka "$LOG_DIR/kafka.out.log" "$KAFKA_DIR" \
    java "$(kafka_cds_opt "$cp")" -Xms256m -Xmx512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
    -Dkafka.logs.dir="$LOG_DIR" -Dlog4j2.configurationFile="$SCRIPT_DIR/kafka-log4j2.xml" \
    -cp "$cp" kafka.Kafka "$KAFKA_PROPS"
}

start_registry() {
  local java jar
  java=$(registry_java)
  jar=$(registry_jar)
  # Storage: SQL in the stack's Postgres (database registry, made by pg_bootstrap), so the schemas and
  # their ids outlive a restart as Kafka's records do; the registry starts once Postgres answers. A small
  # connection pool: Postgres is shared with the tests, which open many sessions of their own.
  # use-canonical-hash: the ccompat API looks schemas up by their canonical form, so a
  # re-registration that differs only in whitespace/ordering finds the existing id.
  # The log format replaces upstream's, whose date pattern prints the zone offset as the month.
  # AutoCreateSharedArchive (Java 19+): the JVM keeps a class-data-sharing archive up to date by
  # itself, which cuts later starts by ~40%. TieredStopAtLevel=1 (C1 JIT only) halves the CPU
  # the registry burns while starting, next to Kafka on two cores; a local registry serves a
  # handful of requests, so the slower peak speed does not matter.
  launch registry "$LOG_DIR/registry.log" "$REGISTRY_BASE" \
    "$java" -XX:+AutoCreateSharedArchive -XX:SharedArchiveFile="$(dirname "$jar")/registry-cds.jsa" \
    -XX:TieredStopAtLevel=1 -Xms64m -Xmx384m \
    -Dquarkus.http.host="$HOST" -Dquarkus.http.port="$REGISTRY_PORT" \
    -Dquarkus.management.host="$HOST" -Dquarkus.management.port="$REGISTRY_MGMT_PORT" \
    -Dapicurio.ccompat.use-canonical-hash=true \
    -Dapicurio.storage.kind=sql -Dapicurio.storage.sql.kind=postgresql \
    -Dapicurio.datasource.url="jdbc:postgresql://$HOST:$PG_PORT/$REGISTRY_DB" \
    -Dapicurio.datasource.username=admin -Dapicurio.datasource.password=admin \
    -Dapicurio.datasource.jdbc.initial-size=2 -Dapicurio.datasource.jdbc.min-size=2 \
    -Dapicurio.datasource.jdbc.max-size=10 \
    -Dquarkus.log.console.format='%d{yyyy-MM-dd HH:mm:ss,SSS} %p [%c{3.}] (%t) %m%n' \
    -jar "$jar"
}

# Install PostgreSQL from Debian's packages when it is missing (root only).
ensure_pg_installed() {
  [[ -x $PG_BIN/initdb ]] && return 0
  is_root || die "postgres: $PG_BIN/initdb not found; install postgresql-$PG_MAJOR (apt-get install postgresql-$PG_MAJOR)"
  say "postgres: installing postgresql-$PG_MAJOR from Debian packages (log: $(rel "$LOG_DIR")/apt.log)" >&2
  { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y "postgresql-$PG_MAJOR"; } \
    >"$LOG_DIR/apt.log" 2>&1 9>&- || die "postgres: apt-get install failed; see $(rel "$LOG_DIR")/apt.log"
  # The package creates and may start the system cluster on our port; we run our own cluster.
  if command -v pg_ctlcluster >/dev/null; then
    pg_ctlcluster "$PG_MAJOR" main stop >/dev/null 2>&1 || true
  fi
  [[ -x $PG_BIN/initdb ]] || die "postgres: $PG_BIN/initdb still missing after install"
}

# The postgres user must be able to reach .stack/postgres: every directory above it needs the
# x bit for "others". Only touch the ones that lack it, and say so.
ensure_pg_reachable() {
  is_root || return 0
  runuser -u postgres -- test -x "$PG_DIR" 2>/dev/null && return 0
  local d=$PG_DIR parents=()
  while [[ $d != / ]]; do d=$(dirname "$d"); parents=("$d" "${parents[@]}"); done
  for d in "${parents[@]}"; do
    if ! runuser -u postgres -- test -x "$d" 2>/dev/null; then
      chmod o+x "$d"
      say "postgres: note: ran chmod o+x $d so the postgres user can reach $(rel "$PG_DIR")" >&2
    fi
  done
}

start_postgres() {
  ensure_pg_installed
  mkdir -p "$PG_DIR" "$PG_SOCK"
  if is_root; then chown postgres:postgres "$PG_DIR" "$PG_SOCK"; fi
  chmod 700 "$PG_DIR"
  ensure_pg_reachable
  # pg_ctl -l opens the log file as the postgres user.
  touch "$LOG_DIR/postgres.log"
  if is_root; then chown postgres:postgres "$LOG_DIR/postgres.log"; fi
  if [[ ! -f $PG_DATA/PG_VERSION ]]; then
    rm -rf "$PG_DATA"   # a half-made directory from an interrupted initdb
    # Local (socket) connections: peer, i.e. the OS user postgres is the superuser "postgres".
    # TCP connections: passwords (scram-sha-256), so admin/admin works on 127.0.0.1.
    (cd "$PG_DIR" && as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U "$(pg_superuser)" -E UTF8 \
      --locale=C.UTF-8 --auth-local=peer --auth-host=scram-sha-256) \
      >"$LOG_DIR/postgres-initdb.log" 2>&1 9>&- ||
      die "postgres: initdb failed; see $(rel "$LOG_DIR")/postgres-initdb.log"
  fi
  rm -f "$RUN_DIR/postgres.pid"
  # -W: do not wait here; the wait happens later, in parallel with the other services.
  # Settings are passed on the command line so they always match this script (pg_ctl hands
  # -o to a shell, hence the inner quotes).
  local cmd=("$PG_BIN/pg_ctl" start -W -D "$PG_DATA" -l "$LOG_DIR/postgres.log"
    -o "-h $HOST -p $PG_PORT -k '$PG_SOCK' -c shared_buffers=128MB -c max_connections=100")
  if is_root; then cmd=(runuser -u postgres -- "${cmd[@]}"); fi
  (cd "$PG_DIR" && setsid -w "${cmd[@]}" >>"$LOG_DIR/postgres.log" 2>&1 </dev/null 9>&-) ||
    die "postgres: pg_ctl start failed; see $(rel "$LOG_DIR")/postgres.log"
}

pg_superuser() { if is_root; then printf postgres; else id -un; fi; }

# Record the postmaster's pid (from its own postmaster.pid) once the server runs.
record_pg_pid() {
  local pid
  pid=$(head -n1 "$PG_DATA/postmaster.pid" 2>/dev/null | tr -dc '0-9' || true)
  if [[ -n $pid ]]; then printf '%s\n' "$pid" >"$RUN_DIR/postgres.pid"; fi
}

# Role admin/admin and database demo, created if missing (safe to run on every `up`). admin is a
# superuser, as POSTGRES_USER is in the postgres image that docker-compose.yml runs: tests create and
# force-drop throwaway databases, which needs the right to end any session in them.
pg_bootstrap() {
  (cd "$PG_DIR" && as_pg "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCK" -p "$PG_PORT" \
    -U "$(pg_superuser)" -d postgres) >>"$LOG_DIR/postgres.log" 2>&1 <<'SQL'
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'admin') THEN
    CREATE ROLE admin LOGIN SUPERUSER PASSWORD 'admin';
  END IF;
  ALTER ROLE admin SUPERUSER;
END
$$;
SELECT 'CREATE DATABASE demo OWNER admin'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'demo')\gexec
SELECT 'CREATE DATABASE registry OWNER admin'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'registry')\gexec
SQL
  [[ $(psql -X -q -At "postgresql://admin:admin@$HOST:$PG_PORT/demo" -c 'select 1' \
    2>>"$LOG_DIR/postgres.log") == 1 ]]
}

# One deeper check for Kafka on `up`: the admin client fetches cluster metadata and the broker's
# API versions (a JVM start, ~2 s, so not used by is-up).
kafka_metadata_ok() {
  java -cp "$(cat "$KAFKA_CLASSPATH_FILE")" org.apache.kafka.tools.BrokerApiVersionsCommand \
    --bootstrap-server "$HOST:$KAFKA_PORT" 2>/dev/null | grep -q "$HOST:$KAFKA_PORT (id: 1 "
}

log_hint() {
  case $1 in
    kafka) printf '%s and %s' "$(rel "$LOG_DIR")/kafka.log" "$(rel "$LOG_DIR")/kafka.out.log" ;;
    registry) printf '%s' "$(rel "$LOG_DIR")/registry.log" ;;
    postgres) printf '%s' "$(rel "$LOG_DIR")/postgres.log" ;;
  esac
}

addr() {
  case $1 in
    kafka) printf '%s' "$HOST:$KAFKA_PORT" ;;
    registry) printf '%s' "http://$HOST:$REGISTRY_PORT" ;;
    postgres) printf '%s' "$HOST:$PG_PORT" ;;
  esac
}

timeout_of() {
  case $1 in
    kafka) printf '%s' "$KAFKA_TIMEOUT" ;;
    registry) printf '%s' "$REGISTRY_TIMEOUT" ;;
    postgres) printf '%s' "$PG_TIMEOUT" ;;
  esac
}

is_running() {
  if [[ $1 == postgres ]]; then
    # Not pg_ctl status: it takes a killed postmaster that init has not reaped yet (a zombie) for a live one.
    local pid
    pid=$(head -n1 "$PG_DATA/postmaster.pid" 2>/dev/null | tr -dc '0-9' || true)
    [[ -n $pid ]] && alive "$pid"
  else
    our_pid "$1" >/dev/null
  fi
}

# One look at a service that `up` is waiting for. Returns 0 ready, 1 not yet, 2 its process
# has exited, 3 answers but the follow-up check failed.
check_once() {
  local svc=$1 fresh=$2 since=$3
  if answers "$svc"; then
    case $svc in
      # Freshly started Kafka: also prove it serves metadata (a JVM tool, so only this once).
      kafka)
        [[ $fresh == 0 ]] || kafka_metadata_ok || return 1
        ensure_scram_user || return 5
        ;;
      postgres) record_pg_pid; pg_bootstrap || return 3 ;;
    esac
    return 0
  fi
  if [[ $svc == postgres ]]; then
    # The postmaster writes postmaster.pid a moment after pg_ctl returns: allow a grace time.
    if ((SECONDS - since > 5)) && ! is_running postgres; then return 2; fi
  elif ! our_pid "$svc" >/dev/null; then
    return 2
  fi
  return 1
}

cmd_up() {
  need_java
  local svc rc=0 status pid pending=() next=()
  declare -A since=() fresh=()
  # Start everything first (each step is quick once cached), then wait for all of them at once,
  # so the services boot in parallel.
  local deferred=""
  for svc in "${SERVICES[@]}"; do
    since[$svc]=$SECONDS
    if is_running "$svc"; then
      fresh[$svc]=0   # still checked below: it may be starting from an earlier `up`
    elif [[ $svc == registry ]]; then
      # Its storage is in Postgres: started below, once Postgres answers and has the registry's database.
      check_ports_free registry "$REGISTRY_PORT" "$REGISTRY_MGMT_PORT" || { rc=1; continue; }
      deferred=registry
      fresh[$svc]=1
      continue
    else
      case $svc in
        kafka) check_ports_free kafka "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT" "$KAFKA_SASL_SSL_PORT" "$KAFKA_MTLS_PORT" || { rc=1; continue; } ;;
        registry) check_ports_free registry "$REGISTRY_PORT" "$REGISTRY_MGMT_PORT" || { rc=1; continue; } ;;
        postgres) check_ports_free postgres "$PG_PORT" || { rc=1; continue; } ;;
      esac
      "start_$svc"
      fresh[$svc]=1
    fi
    pending+=("$svc")
  done

  while ((${#pending[@]} > 0)) || [[ -n $deferred ]]; do
    next=()
    if [[ -n $deferred ]] && ! printf '%s\n' "${pending[@]}" | grep -qx postgres; then
      # Postgres is ready (or failed: then the registry's own wait reports what it lacks).
      start_registry
      since[registry]=$SECONDS
      pending+=(registry)
      deferred=""
    fi
    for svc in "${pending[@]}"; do
      status=0
      check_once "$svc" "${fresh[$svc]}" "${since[$svc]}" || status=$?
      if ((status == 1 && SECONDS - since[$svc] >= $(timeout_of "$svc"))); then status=4; fi
      case $status in
        0)
          pid=$(cat "$RUN_DIR/$svc.pid" 2>/dev/null || echo '?')
          if ((fresh[$svc])); then
            say "$svc: started (pid $pid), answering on $(addr "$svc") after $((SECONDS - since[$svc]))s"
          else
            say "$svc: already running (pid $pid) on $(addr "$svc")"
          fi
          ;;
        1) next+=("$svc") ;;
        2) say "$svc: its process exited during startup; see $(log_hint "$svc")" >&2; rc=1 ;;
        3) say "$svc: answers, but creating/checking admin@demo failed; see $(log_hint "$svc")" >&2; rc=1 ;;
        5) say "$svc: answers, but creating the SCRAM user failed; see $(log_hint "$svc")" >&2; rc=1 ;;
        4) say "$svc: did not answer on $(addr "$svc") within $(timeout_of "$svc")s; see $(log_hint "$svc")" >&2; rc=1 ;;
      esac
    done
    pending=("${next[@]}")
    if ((${#pending[@]} > 0)) || [[ -n $deferred ]]; then sleep 0.3; fi
  done
  return "$rc"
}

# SIGTERM, wait up to STOP_TIMEOUT, then SIGKILL. Fails when SIGKILL was needed.
stop_pid() {
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
    alive "$pid" || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do alive "$pid" || break; sleep 0.1; done
  return 1
}

stop_service() {
  local svc=$1 pid
  if [[ $svc == postgres ]]; then
    if is_running postgres; then
      pid=$(head -n1 "$PG_DATA/postmaster.pid" 2>/dev/null | tr -dc '0-9')
      (cd / && as_pg "$PG_BIN/pg_ctl" stop -D "$PG_DATA" -m fast -t "$STOP_TIMEOUT") >/dev/null 2>&1 ||
        (cd / && as_pg "$PG_BIN/pg_ctl" stop -D "$PG_DATA" -m immediate) >/dev/null 2>&1 || true
      say "postgres: stopped (pid ${pid:-?})"
    else
      say "postgres: not running"
    fi
    rm -f "$RUN_DIR/postgres.pid"
    return 0
  fi
  if pid=$(our_pid "$svc"); then
    if stop_pid "$pid"; then
      say "$svc: stopped (pid $pid)"
    else
      say "$svc: killed (pid $pid) after ${STOP_TIMEOUT}s without exiting on SIGTERM"
      # It may have been writing its class-data-sharing archive; don't keep a truncated one.
      if [[ $svc == kafka ]]; then rm -f "$KAFKA_DIR"/cds-*.jsa; fi
    fi
  else
    say "$svc: not running"
  fi
  rm -f "$RUN_DIR/$svc.pid"
}

cmd_down() {
  local svc
  # In parallel: Kafka's controlled shutdown takes a few seconds on its own.
  for svc in "${SERVICES[@]}"; do stop_service "$svc" & done
  wait
}

cmd_status() {
  local svc pid state
  for svc in "${SERVICES[@]}"; do
    pid=""
    if [[ $svc == postgres ]]; then
      if is_running postgres; then pid=$(head -n1 "$PG_DATA/postmaster.pid" | tr -dc '0-9'); fi
    else
      pid=$(our_pid "$svc") || pid=""
    fi
    if answers "$svc"; then
      state=up
      [[ -n $pid ]] || state="up (not started by this script)"
    elif [[ -n $pid ]]; then
      state="running, not answering"
    else
      state=down
    fi
    printf '%-9s %-24s %-11s %s\n' "$svc" "$state" "${pid:+pid $pid}" "$(addr "$svc")"
  done
}

# The processes whose working directory is Postgres's data directory: the postmaster and its backends.
pg_processes() {
  local proc
  for proc in /proc/[0-9]*; do
    [[ $(readlink "$proc/cwd" 2>/dev/null) == "$PG_DATA" ]] && printf '%s\n' "${proc#/proc/}"
  done
  return 0
}

cmd_kill() {
  local svc=$1 pid="" i
  if [[ $svc == postgres ]]; then
    pid=$(head -n1 "$PG_DATA/postmaster.pid" 2>/dev/null | tr -dc '0-9' || true)
    [[ -n $pid ]] && alive "$pid" || { say "postgres: not running"; return 0; }
    kill -KILL "$pid"
    # Orphaned backends notice their postmaster's death and exit; the next start needs them gone.
    for ((i = 0; i < 100; i++)); do [[ -z $(pg_processes) ]] && break; sleep 0.1; done
    pg_processes | xargs -r kill -KILL 2>/dev/null || true
    # The killed postmaster may stay a zombie (init here reaps late), which Postgres takes for a live one: its lock
    # files go, now that no backend is left.
    rm -f "$RUN_DIR/postgres.pid" "$PG_DATA/postmaster.pid" "$PG_SOCK/.s.PGSQL.$PG_PORT.lock"
  else
    pid=$(our_pid "$svc") || { say "$svc: not running"; return 0; }
    kill -KILL "$pid"
    for ((i = 0; i < 100; i++)); do alive "$pid" || break; sleep 0.1; done
    # A JVM's threads take a moment to go after its main one: wait for the listening port to close too.
    local port=$KAFKA_PORT
    [[ $svc == registry ]] && port=$REGISTRY_PORT
    for ((i = 0; i < 100; i++)); do port_open "$port" || break; sleep 0.1; done
    rm -f "$RUN_DIR/$svc.pid"
  fi
  say "$svc: killed (pid $pid)"
}

cmd_wipe_kafka() {
  stop_service kafka
  rm -rf "$KAFKA_DATA"
  say "kafka: data deleted; the next up starts a new cluster"
}

cmd_is_up() {
  local svc
  for svc in "${SERVICES[@]}"; do answers "$svc" || return 1; done
}

# ---------------------------------------------------------------------------------------------

main() {
  local action=${1:-} target=${2:-}
  case $action in
    up | down | status | is-up | wipe-kafka) ;;
    stop | kill)
      [[ " ${SERVICES[*]} " == *" $target "* ]] || die "usage: $(basename "$0") $action kafka|registry|postgres"
      ;;
    *) die "usage: $(basename "$0") up|down|status|is-up|stop SERVICE|kill SERVICE|wipe-kafka" ;;
  esac
  if [[ $action == is-up ]]; then
    cmd_is_up
    return
  fi
  mkdir -p "$RUN_DIR" "$LOG_DIR"
  # One up/down at a time. Started services must not inherit this lock (hence the 9>&- above).
  exec 9>"$RUN_DIR/.lock"
  flock -w 300 9 || die "another stack.sh up/down is still running"
  case $action in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    stop) stop_service "$target" ;;
    kill) cmd_kill "$target" ;;
    wipe-kafka) cmd_wipe_kafka ;;
  esac
}

main "$@"
