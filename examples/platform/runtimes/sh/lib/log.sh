#!/bin/sh
# Prints its arguments with a timestamp, the way every example service logs.
printf '%s %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*"
