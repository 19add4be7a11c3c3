# Where decisions go: the findings topic (-> notify_slack), the dead-letter topic that catches
# what the functions could not process after every retry, and the Slack webhook secret.

data "google_project" "project" {
  project_id = var.project_id
}

locals {
  # Pub/Sub's own service agent forwards undeliverable messages to the dead-letter topic.
  pubsub_service_agent = "serviceAccount:service-${data.google_project.project.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

resource "google_pubsub_topic" "findings" {
  project      = var.project_id
  name         = "${var.name_prefix}-findings"
  kms_key_name = var.kms_key_name
}

# Keeps every finding for a week: `egress-guard undo FINDING_ID` looks findings up here
# (EGRESS_GUARD_FINDINGS_SUBSCRIPTION), reading without consuming; a SIEM may read it too.
resource "google_pubsub_subscription" "findings_archive" {
  project                    = var.project_id
  name                       = "${var.name_prefix}-findings-archive"
  topic                      = google_pubsub_topic.findings.id
  message_retention_duration = var.dead_letter_retention
  retain_acked_messages      = true
  expiration_policy {
    ttl = "" # never expires
  }
}

resource "google_pubsub_topic" "dead_letter" {
  project      = var.project_id
  name         = "${var.name_prefix}-dead-letter"
  kms_key_name = var.kms_key_name
}

# A topic without a subscription drops what it receives: keep dead letters for a person to read.
resource "google_pubsub_subscription" "dead_letter_inbox" {
  project                    = var.project_id
  name                       = "${var.name_prefix}-dead-letter-inbox"
  topic                      = google_pubsub_topic.dead_letter.id
  message_retention_duration = var.dead_letter_retention
  retain_acked_messages      = true
  expiration_policy {
    ttl = "" # never expires, even when nobody reads it for a month
  }
}

# Dead lettering needs the Pub/Sub service agent to publish to this topic, and only this topic.
resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  project = var.project_id
  topic   = google_pubsub_topic.dead_letter.name
  role    = "roles/pubsub.publisher"
  member  = local.pubsub_service_agent
}

resource "google_secret_manager_secret" "slack_webhook" {
  project   = var.project_id
  secret_id = "${var.name_prefix}-slack-webhook"
  replication {
    auto {
      dynamic "customer_managed_encryption" {
        for_each = var.kms_key_name == null ? [] : [var.kms_key_name]
        content {
          kms_key_name = customer_managed_encryption.value
        }
      }
    }
  }
}

# One secret per team destination of the policy's notify.routes (the default destination is the
# secret above): notify_slack reads each as SLACK_WEBHOOK_URL_<DESTINATION>. Versions are added
# by the team that owns the channel (`gcloud secrets versions add`), never through Terraform.
resource "google_secret_manager_secret" "slack_destination" {
  for_each  = toset(var.slack_destinations)
  project   = var.project_id
  secret_id = "${var.name_prefix}-slack-webhook-${each.value}"
  replication {
    auto {
      dynamic "customer_managed_encryption" {
        for_each = var.kms_key_name == null ? [] : [var.kms_key_name]
        content {
          kms_key_name = customer_managed_encryption.value
        }
      }
    }
  }
}

# Only when asked: the URL goes through a write-only argument, so the state never holds it.
resource "google_secret_manager_secret_version" "slack_webhook" {
  count                  = var.slack_webhook_url_version > 0 ? 1 : 0
  secret                 = google_secret_manager_secret.slack_webhook.id
  secret_data_wo         = var.slack_webhook_url
  secret_data_wo_version = var.slack_webhook_url_version
}
