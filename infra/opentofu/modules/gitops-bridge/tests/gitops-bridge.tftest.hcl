# Plan-only with mocked Helm and Kubernetes providers: no cluster is needed.
mock_provider "helm" {}

mock_provider "kubernetes" {}

variables {
  environment               = "staging"
  cluster_name              = "churn-staging"
  argocd_chart_version      = "8.5.0"
  argocd_values_file        = "tests/fixtures/values.yaml"
  argocd_apps_chart_version = "2.0.2"
  root_application_file     = "tests/fixtures/root.yaml"
  project_files             = ["tests/fixtures/platform.yaml"]
  cluster_annotations = {
    churn_api_iam_role_arn = "arn:aws:iam::111122223333:role/churn-staging-churn-api"
    gitops_repo_url        = "https://github.com/example-fork/churn-platform.git"
    gitops_repo_revision   = "main"
  }
}

run "cluster_secret_carries_the_environment_and_the_role_arns" {
  command = plan

  assert {
    condition     = kubernetes_secret_v1.cluster.metadata[0].labels["environment"] == "staging"
    error_message = "The cluster Secret must carry environment=<env>."
  }

  assert {
    condition     = kubernetes_secret_v1.cluster.metadata[0].labels["argocd.argoproj.io/secret-type"] == "cluster"
    error_message = "Argo CD only reads Secrets labelled as clusters."
  }

  assert {
    condition     = kubernetes_secret_v1.cluster.metadata[0].annotations["churn_api_iam_role_arn"] == "arn:aws:iam::111122223333:role/churn-staging-churn-api"
    error_message = "The role ARNs must be annotations of the cluster Secret."
  }
}

run "root_application_points_at_the_cluster_folder" {
  command = plan

  assert {
    condition     = yamldecode(helm_release.root.values[0]).applications.root.source.path == "clusters/staging"
    error_message = "The root Application must sync clusters/<env>."
  }

  assert {
    condition     = contains(keys(yamldecode(helm_release.root.values[0]).projects), "platform")
    error_message = "The root Application's AppProject must be created with it."
  }

  assert {
    condition     = helm_release.argocd.version == "8.5.0" && helm_release.argocd.chart == "argo-cd"
    error_message = "Argo CD must be installed from the pinned argo-cd chart."
  }
}

run "rejects_an_environment_label_override" {
  command = plan

  variables {
    cluster_labels = { environment = "prod" }
  }

  expect_failures = [var.cluster_labels]
}

run "refuses_a_root_application_for_another_environment" {
  command = plan

  variables {
    environment  = "prod"
    cluster_name = "churn-prod"
  }

  expect_failures = [helm_release.root]
}

run "the_root_follows_the_fork_the_annotations_name" {
  command = plan

  assert {
    condition     = strcontains(helm_release.root.values[0], "https://github.com/example-fork/churn-platform.git")
    error_message = "The root Application must sync from gitops_repo_url, not the URL written in the file."
  }
}
