# Dead letters and the ack deadline for the trigger subscription. Eventarc creates that
# subscription itself and the provider cannot configure it (hashicorp/terraform-provider-google#25069),
# so gcloud attaches the dead-letter topic and sets the ack deadline once the trigger exists, and
# again whenever the trigger is replaced. For push, the ack deadline is how long Pub/Sub waits for
# the function's answer before it delivers the message again (docs/gcp-facts.md §13): notify_slack
# bounds its own time below it (EGRESS_GUARD_SLACK_BUDGET_S), so no finding is redelivered to a
# second instance while the first is still posting it.
# The Pub/Sub service agent also needs subscriber on the subscription to forward from it
# (its publisher grant on the dead-letter topic is made by the notifications module).

data "google_project" "project" {
  project_id = var.project_id
}

resource "terraform_data" "dead_letter" {
  count = var.dead_letter.apply_with_gcloud ? 1 : 0
  triggers_replace = [
    google_cloudfunctions2_function.function.event_trigger[0].trigger,
    var.dead_letter.topic,
    var.dead_letter.max_delivery_attempts,
    var.ack_deadline_seconds,
  ]

  provisioner "local-exec" {
    interpreter = ["/bin/bash", "-c"]
    command     = <<-EOT
      set -euo pipefail
      subscription="$(gcloud eventarc triggers describe "$TRIGGER" --format='value(transport.pubsub.subscription)')"
      gcloud pubsub subscriptions add-iam-policy-binding "$subscription" \
        --member="serviceAccount:$PUBSUB_AGENT" --role=roles/pubsub.subscriber --condition=None >/dev/null
      gcloud pubsub subscriptions update "$subscription" \
        --dead-letter-topic="$DEAD_LETTER_TOPIC" --max-delivery-attempts="$MAX_DELIVERY_ATTEMPTS" \
        --ack-deadline="$ACK_DEADLINE"
    EOT
    environment = {
      TRIGGER               = google_cloudfunctions2_function.function.event_trigger[0].trigger
      DEAD_LETTER_TOPIC     = var.dead_letter.topic
      MAX_DELIVERY_ATTEMPTS = tostring(var.dead_letter.max_delivery_attempts)
      ACK_DEADLINE          = tostring(var.ack_deadline_seconds)
      PUBSUB_AGENT          = "service-${data.google_project.project.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
    }
  }
}
