output "dead_letter_topic_id" {
  description = "Id of the dead-letter topic (projects/P/topics/T), for the functions' trigger subscriptions."
  value       = google_pubsub_topic.dead_letter.id
}

output "dead_letter_inbox" {
  description = "Subscription that keeps dead-lettered messages (pull it to inspect or replay them)."
  value       = google_pubsub_subscription.dead_letter_inbox.id
}

output "findings_topic_id" {
  description = "Id of the findings topic (projects/P/topics/T): remediation functions publish to it, notify_slack is triggered by it."
  value       = google_pubsub_topic.findings.id
}

output "findings_topic_name" {
  description = "Short name of the findings topic."
  value       = google_pubsub_topic.findings.name
}

output "slack_webhook_secret_id" {
  description = "Secret Manager secret id of the Slack webhook (short name): add a version with `gcloud secrets versions add <id> --data-file=-`."
  value       = google_secret_manager_secret.slack_webhook.secret_id
}

output "slack_destination_secret_ids" {
  description = "Per team destination (var.slack_destinations): the Secret Manager secret id of its webhook; notify_slack reads it as SLACK_WEBHOOK_URL_<DESTINATION>."
  value       = { for name, secret in google_secret_manager_secret.slack_destination : name => secret.secret_id }
}

output "findings_archive" {
  description = "Subscription keeping a week of findings, where `egress-guard undo FINDING_ID` looks them up (set EGRESS_GUARD_FINDINGS_SUBSCRIPTION to it)."
  value       = google_pubsub_subscription.findings_archive.id
}
