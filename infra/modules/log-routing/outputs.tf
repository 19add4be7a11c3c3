output "filter" {
  description = "The Logging filter of the sink (the exact text localcloud evaluates in the end-to-end tests)."
  value       = local.filter
}

output "sink_id" {
  description = "Id of the sink (project, folder or organization sink)."
  value = one(concat(
    google_logging_project_sink.sink[*].id,
    google_logging_folder_sink.sink[*].id,
    google_logging_organization_sink.sink[*].id,
  ))
}

output "topic_id" {
  description = "Id of the audit topic (projects/P/topics/T): the trigger topic of the remediation functions."
  value       = google_pubsub_topic.audit.id
}

output "topic_name" {
  description = "Short name of the audit topic."
  value       = google_pubsub_topic.audit.name
}

output "writer_identity" {
  description = "The sink's writer identity (serviceAccount:...), granted publisher on the audit topic only."
  value       = local.writer_identity
}
