#!/usr/bin/env bash
# A 3-node RabbitMQ cluster on 127.0.0.1 (AMQP 5691..5693) for tests and benchmarks:
#   scripts/rabbitmq-cluster.sh start|status|stop|clean|urls
# See docs/cluster.md. The work is done by scripts/rabbitmq-cluster.ts.
set -euo pipefail
cd "$(dirname "$0")/.."
exec node --import tsx scripts/rabbitmq-cluster.ts "$@"
