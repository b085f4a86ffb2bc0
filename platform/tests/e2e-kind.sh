#!/usr/bin/env bash
# The live release check, on the kind cluster of the current kubectl context, along the path a
# real cluster takes:
#   1. a Git server in kind holds a copy of this commit (platform/tests/e2e/prepare_repo.py says
#      what kind substitutes); the churn-api image goes to a local registry kind mirrors for ECR;
#   2. Argo CD is installed from its chart and values as OpenTofu installs it, with the cluster
#      Secret and the root Application; the root syncs clusters/dev, whose ApplicationSets bring
#      Rollouts, Prometheus, Kyverno (denying in the application namespaces) and churn-api;
#   3. a model pin commit is released through the canary, whose analysis the smoke load feeds;
#   4. a pin with a wrong sha256 is aborted, the stable version keeps serving, the abort is
#      dispatched to the stand-in for GitHub, and the revert script would restore the pin.
# Needs kubectl, helm, yq, git, docker, kind and `make setup` (.venv). Run from the repository root.
set -euo pipefail

KIND_CLUSTER="${KIND_CLUSTER:-kind}"
REGISTRY_PORT="${REGISTRY_PORT:-5001}"
# The registry churn-api's ApplicationSet names from the cluster Secret applied below.
ECR="$(yq '.metadata.annotations | .aws_account_id + ".dkr.ecr." + .aws_region + ".amazonaws.com"' \
  platform/tests/fixtures/cluster-secrets/dev.yaml)"
export REPO_URL="git://git.e2e-git.svc.cluster.local/churn-platform.git"
WORK="build/e2e"
COPY="$WORK/repo"
PY=".venv/bin/python"

log() { printf '\n== %s\n' "$*"; }

wait_for() { # wait_for <description> <seconds> <command...>
  local description="$1" deadline=$((SECONDS + $2))
  shift 2
  until "$@"; do
    if ((SECONDS > deadline)); then
      echo "timed out waiting for: $description"
      kubectl get applications -A || true
      kubectl -n churn get rollout,pods,analysisruns,jobs || true
      return 1
    fi
    sleep 10
  done
  echo "ok: $description"
}

registry() {
  log "a local registry, mirrored by kind for the ECR name"
  if ! docker inspect kind-registry >/dev/null 2>&1; then
    docker run --detach --restart=always --publish "127.0.0.1:${REGISTRY_PORT}:5000" \
      --name kind-registry docker.io/library/registry:2
  fi
  docker network connect kind kind-registry 2>/dev/null || true
  local node
  for node in $(kind get nodes --name "$KIND_CLUSTER"); do
    docker exec "$node" mkdir -p "/etc/containerd/certs.d/${ECR}"
    printf '[host."http://kind-registry:5000"]\n  capabilities = ["pull", "resolve"]\n' |
      docker exec -i "$node" cp /dev/stdin "/etc/containerd/certs.d/${ECR}/hosts.toml"
  done
  docker build --file services/churn-api/Dockerfile --tag "localhost:${REGISTRY_PORT}/churn-api:e2e" .
  docker push "localhost:${REGISTRY_PORT}/churn-api:e2e"
  docker inspect --format '{{index .RepoDigests 0}}' "localhost:${REGISTRY_PORT}/churn-api:e2e" |
    sed 's/.*@//' >"$WORK/image.digest"
}

models() {
  log "two models in an in-cluster S3"
  for version in 1 2; do
    "$PY" -c "import sys; from pathlib import Path; from churn_api.fixture import build_fixture_model; print(build_fixture_model(Path(sys.argv[1]), version=sys.argv[2]))" \
      "$WORK/model-$version.onnx" "$version" >"$WORK/model-$version.sha256"
  done
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

git_server() {
  log "the Git server kind syncs from, holding a copy of this commit"
  kubectl apply -f platform/tests/e2e/git.yaml -f platform/tests/e2e/dispatch.yaml
  kubectl -n e2e-git rollout status deployment/git --timeout 5m
  kubectl -n e2e-github rollout status deployment/dispatch --timeout 5m
  "$PY" platform/tests/e2e/prepare_repo.py prepare "$COPY" --repo-url "$REPO_URL" \
    --digest "$(cat "$WORK/image.digest")" --s3-endpoint http://s3.e2e-s3.svc:443 \
    --dispatch-url http://dispatch.e2e-github.svc:8080
  "$PY" platform/tests/e2e/prepare_repo.py pin "$COPY" --sha256 "$(cat "$WORK/model-1.sha256")" --version 1
  git -C "$COPY" init --quiet --initial-branch=main
  git -C "$COPY" -c user.name=e2e -c user.email=e2e@example.org commit --quiet --allow-empty -m bootstrap
  git -C "$COPY" add --all
  commit "dev runs model 1"
}

commit() { # commit <message>: commit the copy and push it to the in-cluster server
  git -C "$COPY" add --all
  git -C "$COPY" -c user.name=e2e -c user.email=e2e@example.org commit --quiet -m "$1"
  kubectl -n e2e-git port-forward service/git 19418:9418 >/dev/null & local forward=$!
  sleep 3
  git -C "$COPY" push --quiet --force git://127.0.0.1:19418/churn-platform.git main
  kill "$forward"
  # Argo CD polls every few minutes; a webhook would tell it at once.
  kubectl -n argocd annotate applications --all --overwrite argocd.argoproj.io/refresh=normal >/dev/null 2>&1 || true
}

argocd() {
  log "Argo CD as OpenTofu installs it, the cluster Secret and the root Application"
  local repo name version
  read -r repo name version <<<"$(yq '.spec.sources[0] | .repoURL + " " + .chart + " " + .targetRevision' platform/argocd/argocd.yaml)"
  helm upgrade --install argocd "$name" --repo "$repo" --version "$version" --namespace argocd \
    --create-namespace --values platform/argocd/values.yaml \
    --values platform/tests/e2e/values-argocd.yaml --wait --timeout 10m
  kubectl apply -f "$COPY/platform/argocd/projects/platform.yaml"
  yq '.metadata.annotations.gitops_repo_url = env(REPO_URL)' platform/tests/fixtures/cluster-secrets/dev.yaml |
    kubectl apply -f -
  kubectl apply -f "$COPY/clusters/dev/root.yaml"
}

rollout() { kubectl -n churn get rollout churn-api -o jsonpath="$1" 2>/dev/null || true; }

healthy_on_new_revision() { # the Rollout is Healthy and its stable hash is no longer $1
  [[ "$(rollout '{.status.phase}')" == Healthy && -n "$(rollout '{.status.stableRS}')" &&
     "$(rollout '{.status.stableRS}')" != "$1" && "$(rollout '{.status.stableRS}')" == "$(rollout '{.status.currentPodHash}')" ]]
}

aborted() { [[ "$(rollout '{.status.abort}')" == true && "$(rollout '{.status.phase}')" == Degraded ]]; }

analysed_with_load() { # the canary's AnalysisRun ran the smoke load and succeeded
  kubectl -n churn get analysisruns -o json |
    yq -p json -e '[.items[] | select(.status.phase == "Successful") | .status.metricResults[].name] | contains(["smoke-load", "prediction-shift"])' >/dev/null
}

dispatched() { # the stand-in for GitHub received the abort of dev's churn-api
  kubectl -n e2e-github logs deployment/dispatch |
    yq -p json -e 'select(.path == "/repos/example-org/churn-platform/dispatches" and .body.event_type == "rollout-aborted" and .body.client_payload.environment == "dev")' >/dev/null 2>&1
}

serving_version() { # the MODEL_VERSION the stable Service answers with
  kubectl -n churn port-forward service/churn-api 18000:8000 >/dev/null & local forward=$!
  sleep 3
  curl --silent --fail http://127.0.0.1:18000/readyz | yq -p json '.model_version'
  kill "$forward"
}

main() {
  rm -rf "$WORK" && mkdir -p "$WORK"
  registry
  models
  git_server
  argocd
  wait_for "the root synced; the ApplicationSets brought churn-api-dev Healthy" 1500 \
    healthy_on_new_revision none
  [[ "$(serving_version)" == 1 ]]

  local stable bad
  stable="$(rollout '{.status.stableRS}')"
  "$PY" platform/tests/e2e/prepare_repo.py pin "$COPY" --sha256 "$(cat "$WORK/model-2.sha256")" --version 2
  commit "dev runs model 2"
  wait_for "model 2 promoted through the canary analysis" 1200 healthy_on_new_revision "$stable"
  wait_for "the analysis ran on the smoke load" 60 analysed_with_load
  [[ "$(serving_version)" == 2 ]]

  stable="$(rollout '{.status.stableRS}')"
  "$PY" platform/tests/e2e/prepare_repo.py pin "$COPY" --sha256 "$(printf 'f%.0s' {1..64})" --version 3
  commit "dev runs a model whose sha256 is wrong"
  bad="$(git -C "$COPY" rev-parse HEAD)"
  wait_for "the release with a wrong sha256 aborted" 900 aborted
  [[ "$(rollout '{.status.stableRS}')" == "$stable" ]]
  [[ "$(serving_version)" == 2 ]]
  wait_for "the abort dispatched to GitHub" 120 dispatched

  log "what the revert workflow would do with that dispatch"
  "$PY" .github/scripts/revert_release.py --root "$COPY" --env dev \
    --aborted-at "$(date -u +%Y-%m-%dT%H:%M:%SZ)" | tee "$WORK/revert.json"
  [[ "$(yq -p json '.revert' "$WORK/revert.json")" == true ]]
  [[ "$(yq -p json '.commit' "$WORK/revert.json")" == "$bad" ]]
  [[ "$(yq -p json '.previous | from_json | .MODEL_VERSION' "$WORK/revert.json")" == 2 ]]
  log "stable kept serving model 2; the revert pull request would restore its pin"
}

main "$@"
