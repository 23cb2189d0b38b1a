// liveswitch_exporter's monitoring mixin: the alerts, recording rules and
// Grafana dashboards of this directory, for kube-prometheus and any other
// jsonnet-built monitoring stack.
//
//   local liveswitch = (import 'mixin.libsonnet') + {
//     _config+:: { jobSelector: 'job="liveswitch-exporter"' },
//   };
//   { 'liveswitch-alerts.json': liveswitch.prometheusAlerts,
//     'liveswitch-rules.json': liveswitch.prometheusRules } +
//   { [name]: liveswitch.grafanaDashboards[name] for name in std.objectFields(liveswitch.grafanaDashboards) }
//
// One source of truth: the mixin reads prometheus/alerts.yml,
// prometheus/rules.yml and grafana/*.json as shipped (the Helm chart carries
// the same files), and applies _config to them. With the default _config it
// renders exactly those files; the dashboards package's TestMixin holds it to
// that.
local alertsFile = std.parseYaml(importstr 'prometheus/alerts.yml');
local rulesFile = std.parseYaml(importstr 'prometheus/rules.yml');

// What the shipped files say, which _config replaces.
local shipped = {
  jobSelector: 'job="liveswitch"',
  runbookURLBase: 'https://github.com/liveswitch-exporter/liveswitch_exporter/blob/main/dashboards/RUNBOOK.md#',
};

{
  _config+:: {
    // Selects the exporter's scrape job in the alerts on the exporter itself
    // (LiveSwitchExporterDown, LiveSwitchExporterReplicaDown). An equality
    // matcher keeps the job label on the absent() alert.
    jobSelector: shipped.jobSelector,
    // Each alert's runbook_url is this base + the alert's name in lower case.
    runbookURLBase: shipped.runbookURLBase,
    // Tags of every dashboard (Grafana's dashboard links and search use them).
    dashboardTags: ['liveswitch'],
  },

  prometheusAlerts+:: {
    groups+: [
      group {
        rules: [
          rule {
            expr: std.strReplace(rule.expr, shipped.jobSelector, $._config.jobSelector),
            annotations+: { runbook_url: $._config.runbookURLBase + std.asciiLower(rule.alert) },
          }
          for rule in group.rules
        ],
      }
      for group in alertsFile.groups
    ],
  },

  prometheusRules+:: {
    groups+: rulesFile.groups,
  },

  grafanaDashboards+:: {
    [name]: $.liveswitchDashboardFiles[name] { tags: $._config.dashboardTags }
    for name in std.objectFields($.liveswitchDashboardFiles)
  },

  // The shipped dashboards by file name; TestMixin checks that every
  // grafana/*.json is here.
  liveswitchDashboardFiles:: {
    'liveswitch-applications.json': import 'grafana/liveswitch-applications.json',
    'liveswitch-exporter.json': import 'grafana/liveswitch-exporter.json',
    'liveswitch-fleet.json': import 'grafana/liveswitch-fleet.json',
  },
}
