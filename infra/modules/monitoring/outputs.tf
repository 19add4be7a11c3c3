output "alert_policies" {
  description = "Names (projects/P/alertPolicies/ID) of the alert policies: dead_letters, and function_errors when functions are watched."
  value = merge(
    { dead_letters = google_monitoring_alert_policy.dead_letters.name },
    { for p in google_monitoring_alert_policy.function_errors : "function_errors" => p.name },
  )
}
