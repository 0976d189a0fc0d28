#!/usr/bin/env bash
# Checks that no revision of the project's own protos broke the one before
# it (wire and JSON compatibility, buf's WIRE_JSON rules): a released field
# is never renumbered, retyped or renamed. LiveKit's derived protos and
# gRPC's are excluded in buf.yaml.
set -euo pipefail
cd "$(dirname "$0")/.."

mapfile -t revisions < <(git log --format=%H -- proto/tokenservice)
checked=0
for ((i = 0; i + 1 < ${#revisions[@]}; i++)); do
  newer=${revisions[i]}
  older=${revisions[i + 1]}
  tmp=$(mktemp -d)
  git archive "$newer" proto buf.yaml | tar -x -C "$tmp"
  (cd "$tmp" && "$OLDPWD/node_modules/.bin/buf" breaking --against "$OLDPWD/.git#ref=$older") || {
    echo "buf breaking: ${newer:0:12} breaks ${older:0:12}" >&2
    rm -rf "$tmp"
    exit 1
  }
  rm -rf "$tmp"
  checked=$((checked + 1))
done
# The working tree against the last commit, for changes not yet committed.
if [ ${#revisions[@]} -gt 0 ]; then
  node_modules/.bin/buf breaking --against ".git#ref=${revisions[0]}"
  checked=$((checked + 1))
fi
echo "buf breaking: ${checked} proto revision(s) checked, none breaking"
