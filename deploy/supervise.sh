#!/usr/bin/env bash
# Restart a command whenever it exits, a bounded number of times: a minimal stand-in for
# systemd's Restart=always (deploy/gridflow-live.service) where systemd is not available.
#
#   deploy/supervise.sh [-n MAX_RESTARTS] [-d DELAY_S] [-p PIDFILE] -- \
#       gridflow live --config live.toml --recovery live-state/RUN
#
# -n  restarts before giving up (default 1000; exit with the command's last status)
# -d  seconds between an exit and the restart (default 10, as RestartSec)
# -p  file that always holds the process id of the running command
# SIGTERM or SIGINT to the supervisor: SIGTERM to the command (its graceful shutdown),
# wait for it, no restart; exit with its status. The command keeps its own process id
# (gridflow live replaces itself with the flow), so the signal reaches the flow.
set -u

usage() { echo "usage: $0 [-n MAX_RESTARTS] [-d DELAY_S] [-p PIDFILE] -- COMMAND [ARGS...]" >&2; }
say() { echo "supervise: $(date -u +%Y-%m-%dT%H:%M:%SZ) $*" >&2; }

max=1000 delay=10 pidfile=""
while getopts "n:d:p:h" opt; do
  case $opt in
    n) max=$OPTARG ;;
    d) delay=$OPTARG ;;
    p) pidfile=$OPTARG ;;
    *) usage; exit 64 ;;
  esac
done
shift $((OPTIND - 1))
if [ $# -eq 0 ]; then usage; exit 64; fi
case $max in ''|*[!0-9]*) echo "supervise: -n must be a whole number >= 0, got '$max'" >&2; exit 64 ;; esac

stopping=0 child=""
# a background job of a non-interactive shell ignores SIGINT: forward SIGTERM for both
on_signal() {
  stopping=1
  say "got SIG$1: stopping the command (SIGTERM to $child)"
  if [ -n "$child" ]; then kill -TERM "$child" 2>/dev/null; fi
}
trap 'on_signal TERM' TERM
trap 'on_signal INT' INT

restarts=0
while :; do
  "$@" &
  child=$!
  if [ -n "$pidfile" ]; then echo "$child" > "$pidfile"; fi
  say "started pid $child (restart $restarts of $max): $1"
  while :; do
    wait "$child"
    rc=$?
    # wait returns early when a trapped signal arrives: wait again while it runs
    kill -0 "$child" 2>/dev/null || break
  done
  say "pid $child exited with status $rc"
  if [ "$stopping" = 1 ]; then exit "$rc"; fi
  if [ "$restarts" -ge "$max" ]; then
    say "giving up after $restarts restart(s)"
    exit "$rc"
  fi
  restarts=$((restarts + 1))
  sleep "$delay" &
  wait $! || true
  if [ "$stopping" = 1 ]; then exit "$rc"; fi
done
