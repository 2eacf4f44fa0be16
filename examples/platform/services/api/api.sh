#!/bin/sh
# A stand-in API: answers its self-test and health check, otherwise logs and waits.
case "$1" in
  --self-test) echo "api self-test ok" ;;
  --health) exit 0 ;;
  *) log "api listening on :8080"; exec sleep 3600 ;;
esac
