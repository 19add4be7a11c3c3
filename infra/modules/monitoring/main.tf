# Watch the watcher: an alert when a finding or an audit event could not be processed after every
# retry (it sits in the dead-letter inbox), and when the functions keep failing (a broken webhook,
# a missing permission). Without these, a broken Slack webhook loses findings silently.

locals {
  # The inbox is given as an id (projects/P/subscriptions/S); the metric labels it by its short name.
  dead_letter_subscription = reverse(split("/", var.dead_letter_subscription))[0]
  runbook                  = "Runbook: infra/README.md, \"When an alert fires\". List what is waiting with `egress-guard dead-letters`, fix the cause, then `egress-guard dead-letters --redrive`."

  # UNCONFIRMED (docs/gcp-facts.md §8.10): a 2nd gen function is a Cloud Run service of the same
  # name, and an event whose handler raised is answered 5xx, so failed executions are that
  # service's 5xx requests (run.googleapis.com/request_count), not the 1st gen execution_count.
  function_filter = "resource.labels.service_name = one_of(${join(", ", [for name in var.function_services : "\"${name}\""])})"
}

resource "google_monitoring_alert_policy" "dead_letters" {
  project               = var.project_id
  display_name          = "${var.name_prefix}: messages waiting in the dead-letter inbox"
  combiner              = "OR"
  notification_channels = var.notification_channels
  user_labels           = var.labels
  severity              = "ERROR"

  conditions {
    display_name = "undelivered messages in ${local.dead_letter_subscription}"
    condition_threshold {
      filter          = "resource.type = \"pubsub_subscription\" AND resource.labels.subscription_id = \"${local.dead_letter_subscription}\" AND metric.type = \"pubsub.googleapis.com/subscription/num_undelivered_messages\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.dead_letter_threshold
      duration        = "0s" # one dead letter is already a finding nobody saw
      aggregations {
        alignment_period   = "300s"
        per_series_aligner = "ALIGN_MAX"
      }
      trigger {
        count = 1
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "Events or findings that egress-guard could not process after every retry are waiting in `${local.dead_letter_subscription}`. ${local.runbook}"
  }
}

resource "google_monitoring_alert_policy" "function_errors" {
  count                 = length(var.function_services) > 0 ? 1 : 0
  project               = var.project_id
  display_name          = "${var.name_prefix}: function executions failing"
  combiner              = "OR"
  notification_channels = var.notification_channels
  user_labels           = var.labels
  severity              = "WARNING"

  conditions {
    display_name = "failed executions of the egress-guard functions"
    condition_threshold {
      filter          = "resource.type = \"cloud_run_revision\" AND metric.type = \"run.googleapis.com/request_count\" AND metric.labels.response_code_class = \"5xx\" AND ${local.function_filter}"
      comparison      = "COMPARISON_GT"
      threshold_value = var.function_errors_threshold
      duration        = var.function_errors_duration
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["resource.labels.service_name"]
      }
      trigger {
        count = 1
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "An egress-guard function failed more than ${var.function_errors_threshold} times in 5 minutes. Transient failures are retried by Pub/Sub; persistent ones end in the dead-letter inbox. Read the function's logs (`gcloud functions logs read NAME`). ${local.runbook}"
  }
}
