# Source on the GPU machine after install_vllm.sh ran there earlier in the same lease: the environment it exports,
# without its 18 s import check. Fails (returns 1) when the install is gone (a fresh machine).
if [ ! -d /tmp/site/vllm_installed_marker ]; then echo "vLLM is not installed on this machine (fresh machine?)"; return 1; fi
export PYTHONPATH=/tmp/vllm/vllm-site:/tmp/site
export VLLM_USE_FLASHINFER_SAMPLER=0 VLLM_NO_USAGE_STATS=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
