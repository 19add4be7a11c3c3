output "alert_policies" {
  description = "The alert policies (var.alerts): dead_letters and function_errors -> policy name; empty when alerts are off."
  value       = var.alerts.enabled ? module.monitoring[0].alert_policies : {}
}

output "audit_topic" {
  description = "Topic the sink writes matching audit entries to (trigger of ensure_nat and replace_connector_firewalls)."
  value       = module.log_routing.topic_id
}

output "dead_letter_inbox" {
  description = "Subscription holding events no function could process after every retry: pull it to inspect them."
  value       = module.notifications.dead_letter_inbox
}

output "findings_topic" {
  description = "Topic of the findings (trigger of notify_slack; subscribe your SIEM here too)."
  value       = module.notifications.findings_topic_id
}

output "functions" {
  description = "Per function: its name (for `gcloud functions deploy`), service account and custom role."
  value = { for name, f in module.functions : name => {
    name            = f.name
    service_account = f.service_account_email
    custom_role     = f.custom_role
    bundle          = f.bundle_object
  } }
}

output "sink_filter" {
  description = "The audit-log sink's filter, as deployed."
  value       = module.log_routing.filter
}

output "sink_writer_identity" {
  description = "Identity the sink writes as (publisher on the audit topic only)."
  value       = module.log_routing.writer_identity
}

output "slack_webhook_secret" {
  description = "Secret Manager secret that holds the Slack webhook URL (add a version if Terraform did not)."
  value       = module.notifications.slack_webhook_secret_id
}

output "slack_destination_secrets" {
  description = "Per team destination: the secret to add its webhook version to (gcloud secrets versions add)."
  value       = module.notifications.slack_destination_secret_ids
}

output "findings_archive" {
  description = "Subscription keeping a week of findings: export EGRESS_GUARD_FINDINGS_SUBSCRIPTION=<this> for `egress-guard undo FINDING_ID`."
  value       = module.notifications.findings_archive
}
