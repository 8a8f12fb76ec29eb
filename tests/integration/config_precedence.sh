#!/bin/sh
# Configuration precedence through the real `jobmon` binary: default < file < env < --set, file
# selection (--config > JOBMON_CONFIG > ~/.config/jobmon/jobmon.conf) and exit codes.  Needs no
# services; prints TAP.  Usage: JOBMON=path/to/jobmon tests/integration/config_precedence.sh
# (default ./jobmon, i.e. run from the build directory).  Needs jq.
set -u
JOBMON=${JOBMON:-./jobmon}
. "$(dirname "$0")/tap.sh"
tap_tmpdir jobmon-cfg-it

# Run jobmon with a clean environment: only PATH, HOME=$tmp/home and the given variables.
jm() {
    env -i PATH="$PATH" HOME="$tmp/home" "$@"
}

# field KEY FIELD  (reads the JSON of `config show` from $tmp/out.json)
field() { jq -r --arg k "$1" --arg f "$2" '.[$k][$f]' "$tmp/out.json"; }

expect() { # expect KEY VALUE SOURCE
    [ "$(field "$1" value)" = "$2" ] && [ "$(field "$1" source)" = "$3" ] || {
        echo "# $1: got $(field "$1" value) ($(field "$1" source)), want $2 ($3)"
        return 1
    }
}

if ! command -v jq >/dev/null 2>&1; then
    echo "Bail out! jq is required"
    exit 1
fi
mkdir -p "$tmp/home"
cat >"$tmp/a.conf" <<'CONF'
kafka { brokers = "file:1"  properties = {"acks=all"} }
redis { port = 16379 }
postgres { conninfo = "host=db user=u password=s3cret" }
CONF
cat >"$tmp/b.conf" <<'CONF'
kafka { brokers = "fileb:1" }
CONF

jm JOBMON_CONFIG=/dev/null "$JOBMON" config show --json >"$tmp/out.json"
ok "default only" expect kafka.brokers localhost:9092 default

jm "$JOBMON" --config "$tmp/a.conf" --json config show >"$tmp/out.json"
ok "file over default" expect kafka.brokers file:1 file
ok "file origin is the path" test "$(field kafka.brokers origin)" = "$tmp/a.conf"
ok "password masked" expect postgres.conninfo "host=db user=u password=***" file

jm JOBMON_KAFKA_BROKERS=env:1 "$JOBMON" --config "$tmp/a.conf" config show --json >"$tmp/out.json"
ok "env over file" expect kafka.brokers env:1 env
ok "other file keys stay" expect redis.port 16379 file

jm JOBMON_KAFKA_BROKERS=env:1 "$JOBMON" --config "$tmp/a.conf" --set kafka.brokers=code:1 \
    config show --json >"$tmp/out.json"
ok "--set over env" expect kafka.brokers code:1 code

jm JOBMON_CONFIG="$tmp/a.conf" "$JOBMON" config show --json >"$tmp/out.json"
ok "JOBMON_CONFIG selects the file" expect kafka.brokers file:1 file
jm JOBMON_CONFIG="$tmp/a.conf" "$JOBMON" --config "$tmp/b.conf" config show --json >"$tmp/out.json"
ok "--config beats JOBMON_CONFIG" expect kafka.brokers fileb:1 file

mkdir -p "$tmp/home/.config/jobmon"
cp "$tmp/b.conf" "$tmp/home/.config/jobmon/jobmon.conf"
jm "$JOBMON" config show --json >"$tmp/out.json"
ok "user file when nothing else" expect kafka.brokers fileb:1 file

jm "$JOBMON" config show >"$tmp/out.txt"
ok "text mode names the source" grep -q "^kafka.brokers = fileb:1  (file $tmp/home/.config/jobmon/jobmon.conf)\$" "$tmp/out.txt"

jm JOBMON_CONFIG=/dev/null JOBMON_REDIS_PORT=abc "$JOBMON" config show >/dev/null 2>"$tmp/err"
ok "bad env int exits 2" test $? -eq 2
ok "bad env int names the variable" grep -q JOBMON_REDIS_PORT "$tmp/err"

printf 'kafka {\n  nope = 1\n}\n' >"$tmp/bad.conf"
jm "$JOBMON" --config "$tmp/bad.conf" config show >/dev/null 2>"$tmp/err"
ok "unknown file key exits 2" test $? -eq 2
ok "unknown file key names file and line" grep -q "$tmp/bad.conf:2: .*nope" "$tmp/err"

jm "$JOBMON" --config "$tmp/missing.conf" config show >/dev/null 2>&1
ok "missing --config exits 2" test $? -eq 2
jm "$JOBMON" --set kafka.nope=1 config show >/dev/null 2>&1
ok "--set unknown key exits 2" test $? -eq 2
jm "$JOBMON" frobnicate >/dev/null 2>&1
ok "unknown command exits 2" test $? -eq 2
jm "$JOBMON" help | grep -q '^  config '
ok "help lists config" test $? -eq 0

tap_end
