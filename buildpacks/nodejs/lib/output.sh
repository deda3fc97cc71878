# Build-log helpers in the Heroku style, sourced by bin/compile. POSIX sh.

topic() { echo "-----> $*"; }
info() { echo "       $*"; }
warn() { echo " !     Warning: $*"; }
# The error goes to stderr as well as ending the build, so a builder that only keeps stderr still says why.
fail() {
  echo " !     $*" >&2
  exit 1
}

# Indents a stream line by line; awk's fflush keeps a slow step's output live (sed would buffer it).
indent() { awk '{ print "       " $0; fflush() }'; }

# Runs "$@" with stdout+stderr indented and returns its exit status, which a plain pipe would lose
# (POSIX sh has no pipefail).
run_indented() {
  _rc_file=$(mktemp)
  { _rc=0; "$@" 2>&1 || _rc=$?; echo "$_rc" >"$_rc_file"; } | indent
  _rc=$(cat "$_rc_file")
  rm -f "$_rc_file"
  return "$_rc"
}

# Config vars reach the build as environment variables only: each file in ENV_DIR is exported
# (name = file name, value = content) and nothing is ever written under BUILD_DIR. Names that would
# break the build environment, and FLYNN_* (set by the slug builder, not by users), are skipped.
export_env_dir() {
  [ -n "${1:-}" ] && [ -d "$1" ] || return 0
  for _env_file in "$1"/*; do
    [ -f "$_env_file" ] || continue
    _env_name=${_env_file##*/}
    case $_env_name in
      *[!A-Za-z0-9_]* | [0-9]*) continue ;;
      PATH | HOME | PWD | SHELL | IFS | GIT_DIR | CPATH | CPPATH | LIBRARY_PATH | LD_PRELOAD | LD_LIBRARY_PATH | FLYNN_*) continue ;;
    esac
    export "$_env_name=$(cat "$_env_file")"
  done
}
