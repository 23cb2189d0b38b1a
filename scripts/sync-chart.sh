#!/usr/bin/env bash
# Copies the bundled alerts, recording rules and Grafana dashboards into the
# Helm chart (helm reads files only from inside a chart). dashboards/ is the
# source; the chart's copies are generated: run this after changing
# dashboards/, and commit both. TestChartCarriesTheBundledFiles fails on any
# drift.
set -euo pipefail
cd "$(dirname "$0")/.."
files=charts/liveswitch-exporter/files
rm -rf "$files"
mkdir -p "$files/dashboards"
cp dashboards/prometheus/alerts.yml dashboards/prometheus/rules.yml "$files/"
cp dashboards/grafana/*.json "$files/dashboards/"
