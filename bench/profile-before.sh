#!/bin/sh
# Records the "before" CPU profile of the paced fan-out phase: the broker as
# it was before the lean gRPC rewrite (commit 487241d), driven by today's
# bench. Writes bench/profiles/paced-before-487241d.md, which every run of
# `npm run bench` shows beside its own ("after") profile.
#
#   sh bench/profile-before.sh        (from the repository root; ~2 minutes plus npm ci)
#
# How: a detached worktree of 487241d in $BEFORE_DIR (default
# /tmp/seqcast-before), `npm ci` there, today's bench/ copied over its own
# (uncommitted), the seqcast fan-out scenario run with the profiled phase.
# 487241d has no PublishStream, so the bench drives it with unary Publish
# (BENCH_SEQCAST_PUBLISH=unary). Nothing else needs adapting: the lean
# client encodes its requests by hand (no generated schema it lacks), and
# bench/broker-child.ts imports the Redis engine (absent there) only when
# BENCH_ENGINE=redis.
set -eu
COMMIT=487241d
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BEFORE_DIR=${BEFORE_DIR:-/tmp/seqcast-before}
OUT="$ROOT/bench/profiles/paced-before-$COMMIT.md"

if [ ! -d "$BEFORE_DIR" ]; then
  git -C "$ROOT" worktree add --detach "$BEFORE_DIR" "$COMMIT"
fi
[ -d "$BEFORE_DIR/node_modules" ] || (cd "$BEFORE_DIR" && npm ci --no-audit --no-fund)
git -C "$BEFORE_DIR" checkout -q -- bench
cp -R "$ROOT/bench/." "$BEFORE_DIR/bench/"
mkdir -p "$ROOT/bench/profiles"
cd "$BEFORE_DIR"
BENCH_SCENARIOS=fanout BENCH_SYSTEMS=seqcast BENCH_SEQCAST_PUBLISH=unary BENCH_RATE_HIGH=0 BENCH_MESSAGES_SEQCAST=5000 \
  BENCH_OUT=- BENCH_PROFILE_BEFORE=/nonexistent BENCH_PROFILE_SAVE="$OUT" \
  node --initial-old-space-size=256 --import tsx bench/run.ts
echo "wrote $OUT; remove the worktree with: git -C $ROOT worktree remove --force $BEFORE_DIR"
