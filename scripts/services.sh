#!/usr/bin/env bash
# Start the services the tests talk to (PostgreSQL, Redis, NATS with JetStream) when they are not running.
set -uo pipefail
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  echo "services: starting PostgreSQL"
  if command -v pg_ctlcluster >/dev/null 2>&1; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  fi
fi
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "services: starting Redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
fi
# NATS answers a connection with an INFO line that says whether JetStream is on
nats_js() {
  timeout 3 bash -c 'exec 3<>/dev/tcp/127.0.0.1/4222; read -r -t 2 line <&3; echo "$line"' 2>/dev/null |
    grep -q '"jetstream":true'
}
if ! nats_js; then
  if ! command -v nats-server >/dev/null 2>&1 && [ ! -x /usr/sbin/nats-server ]; then
    echo "services: installing nats-server"
    (apt-get update -qq && apt-get install -y -qq nats-server) >/dev/null 2>&1 || true
  fi
  echo "services: starting NATS with JetStream"
  mkdir -p /var/lib/nats-server
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
    -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log || true
fi
for i in $(seq 1 30); do
  pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null && redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 &&
    nats_js && break
  sleep 1
done
pg_isready -h 127.0.0.1 -p 5432 || { echo "services: PostgreSQL is not available" >&2; exit 1; }
redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null || { echo "services: Redis is not available" >&2; exit 1; }
nats_js || { echo "services: NATS with JetStream is not available on 127.0.0.1:4222" >&2; exit 1; }
# the database the tests use
psql -h 127.0.0.1 -U postgres -lqt 2>/dev/null | cut -d'|' -f1 | grep -qw test || \
  createdb -h 127.0.0.1 -U postgres test 2>/dev/null || true
exit 0
