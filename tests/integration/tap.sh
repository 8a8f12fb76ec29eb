# tap.sh — sourced by the shell integration tests (cli.sh, config_precedence.sh): a scratch
# directory removed on exit, and TAP output.  POSIX sh.
#   tap_tmpdir NAME              $tmp = a new directory, removed when the script exits
#   ok DESCRIPTION COMMAND...    run COMMAND, print "ok N - DESCRIPTION" or "not ok N - ..."
#   tap_end                      print the plan; status 0 when every check passed
n=0
fails=0

tap_tmpdir() {
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX") || exit 1
    trap 'rm -rf "$tmp"' EXIT INT TERM
}

ok() {
    tap_desc=$1
    shift
    n=$((n + 1))
    if "$@"; then
        echo "ok $n - $tap_desc"
    else
        echo "not ok $n - $tap_desc"
        fails=$((fails + 1))
    fi
}

tap_end() {
    echo "1..$n"
    [ "$fails" -eq 0 ]
}
