# Sourced by .ci/run: start PostgreSQL and Redis when they are not running,
# wait until they answer, and export their addresses for the tests.
export MOAT_TEST_POSTGRES_URL="${MOAT_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}"
export MOAT_TEST_REDIS_ADDR="${MOAT_TEST_REDIS_ADDR:-127.0.0.1:6379}"

ensure_postgres() {
  if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
    echo "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  fi
  for _ in $(seq 1 60); do
    if psql "$MOAT_TEST_POSTGRES_URL" -qtAc 'select 1' >/dev/null 2>&1; then echo "PostgreSQL answers"; return 0; fi
    sleep 0.5
  done
  echo "PostgreSQL does not answer at $MOAT_TEST_POSTGRES_URL" >&2
  return 1
}

ensure_redis() {
  if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    echo "starting Redis"
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no || true
  fi
  for _ in $(seq 1 60); do
    if [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = "PONG" ]; then echo "Redis answers"; return 0; fi
    sleep 0.5
  done
  echo "Redis does not answer at $MOAT_TEST_REDIS_ADDR" >&2
  return 1
}
