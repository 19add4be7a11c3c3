output "job_name" {
  description = "The Cloud Run job that runs the sweep (gcloud run jobs execute NAME --region REGION runs it now)."
  value       = google_cloud_run_v2_job.sweep.name
}

output "service_account_email" {
  description = "The sweep's own service account (the principal of its calls in the audit log)."
  value       = google_service_account.runner.email
}

output "role_id" {
  description = "The organization custom role granted to the sweep's service account."
  value       = google_organization_iam_custom_role.sweep.id
}

output "scheduler_job" {
  description = "The Cloud Scheduler job that starts the sweep."
  value       = google_cloud_scheduler_job.sweep.id
}
