output "bundle_object" {
  description = "gs:// path of the uploaded bundle."
  value       = "gs://${google_storage_bucket_object.bundle.bucket}/${google_storage_bucket_object.bundle.name}"
}

output "custom_role" {
  description = "Full name of the function's custom role (null when it needs no permission)."
  value       = local.role_name
}

output "function_id" {
  description = "Id of the function (projects/P/locations/R/functions/NAME)."
  value       = google_cloudfunctions2_function.function.id
}

output "name" {
  description = "Name of the function, as `gcloud functions deploy NAME` needs it."
  value       = google_cloudfunctions2_function.function.name
}

output "service_account_email" {
  description = "Email of the function's own service account (excluded from the sink filter)."
  value       = google_service_account.function.email
}

output "trigger" {
  description = "Eventarc trigger that delivers the topic's messages (its subscription carries the dead-letter policy)."
  value       = google_cloudfunctions2_function.function.event_trigger[0].trigger
}
