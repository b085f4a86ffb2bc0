#!/usr/bin/env bash
# The live release check, on the kind cluster of the current kubectl context:
#   1. install Argo CD, Argo Rollouts and Prometheus from the charts and values in Git;
#   2. Argo CD syncs dev's churn-api from this commit (image built here, models in an
#      in-cluster S3);
#   3. a release of a new model pin succeeds through the canary analysis;
#   4. a pin with a wrong sha256 is aborted, and the stable version keeps serving.
# Needs kubectl, helm, yq, docker, kind and `make setup` (.venv). Run from the repository root.
set -euo pipefail

REPO_URL="${REPO_URL:-${GITHUB_SERVER_URL:-https://github.com}/${GITHUB_REPOSITORY:-example-org/churn-platform}.git}"
REVISION="${REVISION:-${GITHUB_SHA:-main}}"
IMAGE="${IMAGE:-churn-api:e2e}"
KIND_CLUSTER="${KIND_CLUSTER:-kind}"
ORIGIN_REPO="https://github.com/example-org/churn-platform.git"
WORK="build/e2e"
PY=".venv/bin/python"

log() { printf '\n== %s\n' "$*"; }

chart() { # chart <applicationset or application> -> "<repo> <chart> <version>" of its first source
  yq '(.spec.template.spec.sources // .spec.sources)[0] | .repoURL + " " + .chart + " " + .targetRevision' "$1"
}

helm_install() { # helm_install <release> <namespace> <appset> <values...>
  local release="$1" namespace="$2" repo name version values=()
  read -r repo name version <<<"$(chart "$3")"
  shift 3
  for file in "$@"; do values+=(--values "$file"); done
  helm upgrade --install "$release" "$name" --repo "$repo" --version "$version" \
    --namespace "$namespace" --create-namespace "${values[@]}" --wait --timeout 10m
}

install_platform() {
  log "Argo CD, Argo Rollouts and Prometheus at the versions pinned in Git"
  helm_install argocd argocd platform/argocd/argocd.yaml \
    platform/argocd/values.yaml platform/tests/e2e/values-argocd.yaml
  helm_install argo-rollouts argo-rollouts platform/apps/argo-rollouts/applicationset.yaml \
    platform/apps/argo-rollouts/values.yaml platform/tests/e2e/values-argo-rollouts.yaml
  helm_install kube-prometheus-stack monitoring platform/apps/kube-prometheus-stack/applicationset.yaml \
    platform/apps/kube-prometheus-stack/values.yaml platform/tests/e2e/values-kube-prometheus-stack.yaml
  if [[ -f monitoring/kustomization.yaml ]]; then kubectl apply -k monitoring; fi
  # The AppProjects and the churn namespace, trusting this repository instead of the example one.
  for file in platform/argocd/projects/platform.yaml platform/argocd/projects/churn.yaml platform/argocd/namespaces.yaml; do
    sed "s#${ORIGIN_REPO}#${REPO_URL}#" "$file" | kubectl apply -f -
  done
  # The cluster Secret the ApplicationSets' generators read.
  kubectl -n argocd apply -f - <<YAML
apiVersion: v1
kind: Secret
metadata:
  name: in-cluster
  labels:
    argocd.argoproj.io/secret-type: cluster
    environment: dev
stringData:
  name: in-cluster
  server: https://kubernetes.default.svc
YAML
}

build_models() {
  log "image and models"
  docker build --file services/churn-api/Dockerfile --tag "$IMAGE" .
  kind load docker-image "$IMAGE" --name "$KIND_CLUSTER"
  mkdir -p "$WORK"
  for version in 1 2; do
    "$PY" -c "import sys; from pathlib import Path; from churn_api.fixture import build_fixture_model; print(build_fixture_model(Path(sys.argv[1]), version=sys.argv[2]))" \
      "$WORK/model-$version.onnx" "$version" >"$WORK/model-$version.sha256"
  done
  "$PY" - "$WORK/record.json" <<'PY'
import sys
import msgspec
from churn_api.contract import CustomerFeatures
from churn_api.fixture import fixture_frame
frame, _ = fixture_frame(rows=1)
record = msgspec.convert(frame.iloc[0].to_dict(), CustomerFeatures, strict=False)
open(sys.argv[1], "wb").write(msgspec.json.encode(record))
PY
  kubectl apply -f platform/tests/e2e/s3.yaml
  kubectl -n e2e-s3 rollout status deployment/s3 --timeout 5m
  kubectl -n e2e-s3 port-forward service/s3 15000:443 >/dev/null & local forward=$!
  sleep 3
  "$PY" - "$WORK" <<'PY'
import sys
from pathlib import Path
import boto3
work = Path(sys.argv[1])
s3 = boto3.client("s3", endpoint_url="http://127.0.0.1:15000", region_name="eu-west-1",
                  aws_access_key_id="e2e", aws_secret_access_key="e2e")
s3.create_bucket(Bucket="churn-dev-models", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
for version in ("1", "2"):
    sha = (work / f"model-{version}.sha256").read_text().strip()
    s3.upload_file(str(work / f"model-{version}.onnx"), "churn-dev-models", f"churn-model/sha256/{sha}.onnx")
PY
  kill "$forward"
}

sync_dev() { # sync_dev <sha256 in the URI> <MODEL_SHA256> <MODEL_VERSION>
  log "Argo CD syncs dev with MODEL_VERSION=$3"
  kubectl apply -f - <<YAML
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: churn-api-dev
  namespace: argocd
spec:
  project: churn
  destination:
    server: https://kubernetes.default.svc
    namespace: churn
  source:
    repoURL: ${REPO_URL}
    targetRevision: ${REVISION}
    path: platform/apps/churn-api/overlays/dev
    kustomize:
      patches:
        # What kind has instead of ECR, S3 and IRSA; and a short deadline for the abort.
        - target: {kind: Deployment, name: churn-api}
          patch: |-
            apiVersion: apps/v1
            kind: Deployment
            metadata: {name: churn-api}
            spec:
              template:
                spec:
                  containers:
                    - name: churn-api
                      image: ${IMAGE}
                      env:
                        - {name: MODEL_URI, value: "s3://churn-dev-models/churn-model/sha256/$1.onnx"}
                        - {name: MODEL_SHA256, value: "$2"}
                        - {name: MODEL_VERSION, value: "$3"}
                        - {name: AWS_ENDPOINT_URL_S3, value: "http://s3.e2e-s3.svc:443"}
                        - {name: AWS_ACCESS_KEY_ID, value: e2e}
                        - {name: AWS_SECRET_ACCESS_KEY, value: e2e}
                        - {name: AWS_REGION, value: eu-west-1}
        - target: {kind: Rollout, name: churn-api}
          patch: |-
            - {op: replace, path: /spec/progressDeadlineSeconds, value: 240}
  syncPolicy:
    automated: {prune: true, selfHeal: true}
    syncOptions: [PruneLast=true, RespectIgnoreDifferences=true]
  ignoreDifferences:
    - {group: argoproj.io, kind: Rollout, jsonPointers: [/spec/replicas]}
    - {group: apps, kind: Deployment, jsonPointers: [/spec/replicas]}
    - {kind: Service, jsonPointers: [/spec/selector/rollouts-pod-template-hash]}
YAML
}

rollout() { kubectl -n churn get rollout churn-api -o jsonpath="$1" 2>/dev/null || true; }

wait_for() { # wait_for <description> <seconds> <command...>
  local description="$1" deadline=$((SECONDS + $2))
  shift 2
  until "$@"; do
    if ((SECONDS > deadline)); then
      echo "timed out waiting for: $description"
      kubectl -n churn get rollout churn-api -o yaml || true
      kubectl -n churn get pods,analysisruns || true
      return 1
    fi
    sleep 10
  done
  echo "ok: $description"
}

healthy_on_new_revision() { # the Rollout is Healthy and its stable hash is no longer $1
  [[ "$(rollout '{.status.phase}')" == Healthy && -n "$(rollout '{.status.stableRS}')" &&
     "$(rollout '{.status.stableRS}')" != "$1" && "$(rollout '{.status.stableRS}')" == "$(rollout '{.status.currentPodHash}')" ]]
}

aborted() { [[ "$(rollout '{.status.abort}')" == true && "$(rollout '{.status.phase}')" == Degraded ]]; }

serving_version() { # the MODEL_VERSION the stable Service answers with
  kubectl -n churn port-forward service/churn-api 18000:8000 >/dev/null & local forward=$!
  sleep 3
  curl --silent --fail http://127.0.0.1:18000/readyz | yq -p json '.model_version'
  kill "$forward"
}

main() {
  install_platform
  build_models
  local sha1 sha2 stable
  sha1="$(cat "$WORK/model-1.sha256")"
  sha2="$(cat "$WORK/model-2.sha256")"

  sync_dev "$sha1" "$sha1" 1
  wait_for "first revision Healthy" 600 healthy_on_new_revision none
  [[ "$(serving_version)" == 1 ]]

  kubectl apply -f platform/tests/e2e/traffic.yaml
  kubectl -n e2e-traffic create configmap payload --from-file=record.json="$WORK/record.json" \
    --dry-run=client -o yaml | kubectl apply -f -

  stable="$(rollout '{.status.stableRS}')"
  sync_dev "$sha2" "$sha2" 2
  wait_for "release of model 2 promoted through the canary analysis" 1200 healthy_on_new_revision "$stable"
  [[ "$(serving_version)" == 2 ]]

  stable="$(rollout '{.status.stableRS}')"
  sync_dev "$sha2" "$(printf 'f%.0s' {1..64})" 3
  wait_for "release with a wrong sha256 aborted" 900 aborted
  [[ "$(rollout '{.status.stableRS}')" == "$stable" ]]
  [[ "$(serving_version)" == 2 ]]
  log "stable kept serving model 2 after the abort"
}

main "$@"
