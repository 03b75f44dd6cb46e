"""Every SGLang 0.5.23 server option, classified for soft thinking. Plain data.

Each ``ServerArgs`` field is in exactly one of three classes:

* :data:`REFUSED`: the start stops with a message naming the option when it is on
  (``hooks/server_args.py``, whose ``REFUSED`` table holds the check and the reason; this
  maps each field to the option there);
* :data:`VERIFIED`: soft thinking is checked with the option by the test named
  (``path::function``);
* :data:`NO_EFFECT`: reading SGLang's code, the option changes nothing the soft step, the
  concept-token inputs or the per-request state depend on, or acts only together with a
  refused option; grouped by why.

``tests/unit/test_option_classes.py`` fails when a field of the installed SGLang is in none
of them (a newer SGLang with a new option fails until someone classifies it), when a name
here is no longer a field, and when a verified entry names a test that does not exist.
"""

from __future__ import annotations


def _names(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# field -> the option of hooks/server_args.REFUSED that refuses it
REFUSED = {
    "speculative_algorithm": "--speculative-algorithm",
    "decoupled_spec_role": "--decoupled-spec-role",
    "disaggregation_mode": "--disaggregation-mode",
    "pp_size": "--pp-size",
    "enable_dp_attention": "--enable-dp-attention",
    "attn_dp_size": "--attn-dp-size",
    "dwdp_size": "--attn-dp-size",  # SGLang resolves --dwdp-size N into --attn-dp-size N
    "enable_attn_tp_input_scattered": "--enable-attn-tp-input-scattered",
    "enable_layernorm_sp": "--enable-layernorm-sp",
    "enable_two_batch_overlap": "--enable-two-batch-overlap",
    "enable_pdmux": "--enable-pdmux",
    "dllm_algorithm": "--dllm-algorithm",
    "num_continuous_decode_steps": "--num-continuous-decode-steps",
    "enable_torch_compile": "--enable-torch-compile",
    "skip_tokenizer_init": "--skip-tokenizer-init",
    "attn_cp_size": "--attn-cp-size",
    "enable_prefill_cp": "--enable-prefill-cp",
    "dcp_size": "--dcp-size",
    "enable_symm_mem": "--enable-symm-mem",
    "enable_torch_symm_mem": "--enable-symm-mem",
    "enable_lora": "--enable-lora",
    "lora_paths": "--enable-lora",
    "enable_strict_thinking": "--enable-strict-thinking",
    "enable_watermark": "--enable-watermark",
    "radix_cache_backend": "--radix-cache-backend",
    "enable_lmcache": "--enable-lmcache",
    "enable_flexkv": "--enable-flexkv",
    "enable_unified_cache_external_linker": "--enable-unified-cache-external-linker",
    "sampling_backend": "--sampling-backend",
    "device": "--device",
    "mlx_enable_sampling": "--mlx-enable-sampling",
}

_MODES = "tests/integration/test_engine_modes.py"
_OPTIONS = "tests/integration/test_sglang_options.py"

# field -> the test that checks soft thinking with it
VERIFIED = {
    "disable_radix_cache": f"{_MODES}::test_retraction_under_memory_pressure_without_radix_cache_or_overlap",
    "disable_overlap_schedule": f"{_MODES}::test_retraction_under_memory_pressure_without_radix_cache_or_overlap",
    "max_total_tokens": f"{_MODES}::test_retraction_under_memory_pressure_without_radix_cache_or_overlap",
    "enable_mixed_chunk": f"{_MODES}::test_mixed_chunked_prefill_with_prompts_arriving_while_thinking",
    "chunked_prefill_size": f"{_MODES}::test_mixed_chunked_prefill_with_prompts_arriving_while_thinking",
    "dp_size": f"{_MODES}::test_data_parallel_schedulers_each_keep_their_own_state",
    "grammar_backend": f"{_MODES}::test_overlap_scheduler_with_a_grammar_request_in_the_batch",
    "context_length": f"{_OPTIONS}::test_a_prompt_longer_than_the_context_length_is_a_400_naming_it",
    "tp_size": "tests/integration/test_tensor_parallel.py::test_a_retracted_soft_request_under_tp_2_follows_its_unretracted_run",
    "enable_custom_logit_processor": "tests/unit/test_native_fields.py::test_a_soft_request_with_the_field_is_refused_naming_it",
    "preferred_sampling_params": "tests/unit/test_native_fields.py::test_the_servers_preferred_sampling_params_count_too",
    "attention_backend": "tests/unit_server/test_cpu_defaults.py::test_unset_options_get_the_cpu_defaults_and_the_log_says_so",
    "sleep_on_idle": "tests/unit_server/test_cpu_defaults.py::test_unset_options_get_the_cpu_defaults_and_the_log_says_so",
}

# why it has no effect on soft thinking -> fields
NO_EFFECT = {
    "which weights are loaded and how; the soft step reads the loaded model's own logits and "
    "input embedding, which hooks/model_check.py checks at start-up": _names("""
        model_path load_format model_loader_extra_config trust_remote_code is_embedding revision
        model_impl model_config_parser json_model_override_args quantization
        quantization_param_path modelopt_quant modelopt_checkpoint_restore_path
        modelopt_checkpoint_save_path modelopt_export_path quantize_and_serve rl_quant_profile
        startup_weight_load_mode custom_weight_loader weight_loader_disable_mmap
        weight_loader_prefetch_checkpoints weight_loader_prefetch_num_threads
        weight_loader_drop_cache_after_load remote_instance_weight_loader_seed_instance_ip
        remote_instance_weight_loader_seed_instance_service_port
        remote_instance_weight_loader_send_weights_group_ports remote_instance_weight_loader_backend
        remote_instance_weight_loader_start_seed_via_transfer_engine engine_info_bootstrap_port
        modelexpress_config download_dir model_checksum delete_ckpt_after_loading
        decrypted_config_file decrypted_draft_config_file checkpoint_engine_wait_weights_before_ready
        weight_cache_mode weight_cache_socket weight_cache_timeout qsa_indexer_dtype
        enable_memory_saver enable_weights_cpu_backup enable_draft_weights_cpu_backup
        cpu_offload_gb offload_group_size offload_num_in_group offload_prefetch_step offload_mode
        ple_offload_embedding ple_offload_backend ple_offload_dir"""),
    "numerics of kernels and caches, the same for plain and soft rows (the soft step works on "
    "whatever logits and embeddings they give)": _names("""
        dtype kv_cache_dtype enable_fp32_lm_head enable_tf32_matmul decode_attention_backend
        enable_lean_attention prefill_attention_backend fp8_gemm_runner_backend
        fp4_gemm_runner_backend bf16_gemm_backend dsa_prefill_backend dsv4_prefill_backend
        dsa_decode_backend dsa_paged_mqa_logits_backend dsa_topk_backend disable_flashinfer_autotune
        flashinfer_autotune_skip_ops triton_attention_reduce_in_fp32 triton_attention_num_kv_splits
        triton_attention_split_tile_size flashinfer_mla_disable_ragged enable_fused_qk_norm_rope
        enable_precise_embedding_interpolation enable_deepseek_v4_fp4_indexer
        prefill_kv_cache_dequant_dtype dsv4_attn_backend enable_amd_monokernel dsa_triton_union
        enable_dsa_fused_indexer enable_nvidia_megakernel enable_deterministic_inference
        rl_on_policy_target"""),
    "recurrent-state kernels and storage of hybrid (Mamba / linear-attention) models; their "
    "cached states past a soft request's prompt are never inserted (hooks/prefix_cache.py)": _names("""
        mamba_backend mamba_ssm_dtype mamba_max_states_per_path enable_mamba_cache_stochastic_rounding
        mamba_cache_philox_rounds mamba_radix_cache_strategy uses_mamba_radix_cache
        mamba_track_interval enable_int8_mamba_checkpoint int8_mamba_ckpt_size linear_attn_backend
        linear_attn_decode_backend linear_attn_prefill_backend linear_attn_verify_backend
        enable_linear_replayssm linear_replayssm_cache_len max_mamba_cache_size
        mamba_full_memory_ratio"""),
    "tokenizer, detokenizer and HTTP front end; every path into the scheduler goes through "
    "TokenizerManager._create_tokenized_object, where soft-thinking requests are validated": _names("""
        tokenizer_path tokenizer_mode tokenizer_backend tokenizer_worker_num detokenizer_worker_num
        host port fastapi_root_path smg_grpc_mode grpc_mode grpc_port grpc_worker_threads sidecar
        sidecar_args skip_server_warmup warmups enable_http2 http2_max_concurrent_streams
        http2_initial_connection_window_size ssl_keyfile ssl_certfile ssl_ca_certs
        ssl_keyfile_password enable_ssl_refresh api_key admin_api_key served_model_name
        weight_version chat_template trust_request_chat_template hf_chat_template_name
        completion_template file_storage_path enable_cache_report return_input_ids
        return_output_ids reasoning_parser default_chat_template_kwargs tool_call_parser
        tool_server sampling_defaults asr_max_buffer_seconds asr_max_concurrent_sessions
        allow_auto_truncate stream_interval batch_notify_size stream_response_default_include_usage
        incremental_streaming_output enable_dynamic_batch_tokenizer dynamic_batch_tokenizer_batch_size
        dynamic_batch_tokenizer_batch_timeout enable_tokenizer_batch_encode
        disable_tokenizer_batch_decode enable_response_store grpc_response_timeout_secs
        enable_http_worker_reuseport"""),
    "per-request features a soft-thinking request may not use (native_fields.py: grammars, "
    "sessions, logprobs): these only configure them": _names("""
        constrained_json_whitespace_pattern constrained_json_disable_any_whitespace
        constrained_json_max_whitespace_cnt disable_outlines_disk_cache enable_streaming_session
        enable_session_radix_cache sampling_mask_max_tokens"""),
    "read-only outputs and observability: logs, metrics, traces, dumps, extra returned tensors "
    "(log level debug also turns on the cross-rank check of checks.py)": _names("""
        log_level        log_level_http log_requests log_requests_level log_requests_format log_requests_target
        uvicorn_access_log_exclude_prefixes crash_dump_folder show_time_cost enable_metrics
        smg_http_sidecar_port enable_mfu_metrics enable_metrics_for_all_schedulers
        load_snapshot_publish_interval tokenizer_metrics_custom_labels_header
        tokenizer_metrics_allowed_custom_labels extra_metric_labels bucket_time_to_first_token
        bucket_inter_token_latency bucket_e2e_request_latency prompt_tokens_buckets
        generation_tokens_buckets gc_warning_threshold_secs decode_log_interval
        enable_request_time_stats_logging kv_events_config load_publish_endpoint
        enable_forward_pass_metrics forward_pass_metrics_worker_id forward_pass_metrics_ipc_name
        enable_trace trace_modules otlp_traces_endpoint export_metrics_to_file
        export_metrics_to_file_dir stat_loggers kv_canary kv_canary_real_data
        kv_canary_sweep_interval debug_tensor_dump_output_folder debug_tensor_dump_layers
        debug_tensor_dump_input_file forward_hooks msprobe_dump_config otlp_service_name
        enable_return_hidden_states return_hidden_states_mode enable_return_routed_experts
        enable_return_indexer_topk enable_return_aux_hidden_states aux_hidden_state_capture
        return_aux_hidden_state_layer_ids enable_layerwise_nvtx_marker"""),
    "admission, ordering and sizing of batches: soft state is per request (the state table), "
    "and a preempted request is retracted as under memory pressure, which is verified": _names("""
        mem_fraction_static max_running_requests max_queued_requests prefill_decode_interval
        enable_dynamic_chunking max_prefill_tokens prefill_max_requests schedule_policy
        enable_priority_scheduling disable_priority_preemption default_priority_value
        abort_on_priority_when_disabled schedule_low_priority_values_first
        priority_scheduling_preemption_threshold retraction_policy schedule_conservativeness
        scheduler_recv_interval enable_prefill_delayer prefill_delayer_max_delay_passes
        prefill_delayer_token_usage_low_watermark prefill_delayer_forward_passes_buckets
        prefill_delayer_wait_seconds_buckets prefill_delayer_queue_min_ratio
        prefill_delayer_max_delay_ms min_free_slots_delay prefill_decode_interval_min_bs
        load_balance_method"""),
    "KV memory layout and the prefix cache's policy: a soft request's KV past its prompt is never "
    "inserted, and every match it makes (device, host, storage; rounded down to pages) is "
    "capped at its prompt (hooks/prefix_cache.py)": _names("""
        page_size c128_page_size swa_full_tokens_ratio disable_hybrid_swa_memory
        prefill_only_disable_kv_cache disable_chunked_prefix_cache swa_prefix_tails
        _swa_full_tokens_ratio_explicitly_set radix_eviction_policy radix_eviction_policy_config
        _radix_eviction_policy_explicitly_set enable_page_major_kv_layout enable_unified_memory
        enable_hierarchical_cache hicache_host_memory_mode hicache_ratio hicache_size
        hicache_write_policy hicache_io_backend hicache_mem_layout hicache_storage_backend
        hicache_storage_prefetch_policy hicache_storage_backend_extra_config
        hicache_storage_prefetch_retry_poll_interval hicache_storage_prefetch_retry_max_attempts
        hicache_host_memory_fraction enable_hisparse hisparse_config strip_thinking_cache
        enable_encoder_swa_bounded_replay enable_decoder_swa_bounded_replay"""),
    "only act together with a refused option (configure it, or need it on)": _names("""
        uno_lora_path speculative_draft_model_path speculative_draft_model_revision
        speculative_draft_load_format speculative_num_steps speculative_eagle_topk
        speculative_num_draft_tokens speculative_dflash_block_size speculative_dspark_block_size
        speculative_dspark_sps_table_path speculative_dspark_confidence_sts_path
        speculative_dspark_align_verify_tokens_to_graph_tier speculative_accept_threshold_single
        speculative_accept_threshold_acc speculative_use_rejection_sampling speculative_token_map
        speculative_attention_mode speculative_draft_attention_backend speculative_dsa_topk_backend
        speculative_draft_kv_cache_dtype speculative_draft_window_size speculative_moe_runner_backend
        speculative_moe_a2a_backend speculative_enable_w4a4_mxfp4_megamoe
        speculative_draft_model_quantization _speculative_draft_quantization_explicitly_set
        enable_multi_layer_eagle speculative_adaptive speculative_adaptive_config spec_trace_dir
        speculative_ngram_min_bfs_breadth speculative_ngram_max_bfs_breadth
        speculative_ngram_match_type speculative_ngram_max_trie_depth speculative_ngram_capacity
        speculative_ngram_external_corpus_path speculative_ngram_external_sam_budget
        speculative_ngram_external_corpus_max_tokens speculative_domino_candidate_pool_size
        speculative_boundary_reduction speculative_use_block_verification speculative_draft_sink_size
        enable_linear_replayssm_spec decoupled_spec_bind_endpoint decoupled_spec_connect_endpoints
        decoupled_spec_rank disaggregation_transfer_backend disaggregation_bootstrap_port
        disaggregation_ib_device disaggregation_decode_enable_radix_cache
        disaggregation_decode_enable_offload_kvcache disaggregation_decode_retraction_backup
        num_reserved_decode_tokens disaggregation_decode_extra_slots
        disaggregation_decode_polling_interval optimistic_prefill_attempts
        disaggregation_enable_kv_checksum enable_pd_role_switch
        disaggregation_decode_host_receive_threshold disaggregation_decode_allocation_policy
        pdmux_config_path sm_group_num pp_max_micro_batch_size pp_async_batch_depth
        dcp_comm_backend dcp_replicate_q_proj cp_strategy enable_dsa_cache_layer_split
        enable_cp_decode_attn_tp enable_kv_cache_sharding enable_cp_tp_group_sharing
        enable_dp_attention_local_control_broadcast enable_dp_lm_head disable_attn_tp_gather
        enable_megamoe_for_layernorm_sp tbo_token_distribution_threshold dllm_algorithm_config
        dllm_fdfo enable_torch_compile_debug_mode torch_compile_max_bs enable_lora_overlap_loading
        max_lora_rank lora_target_modules max_loaded_loras max_loras_per_batch lora_eviction_policy
        lora_backend max_lora_chunk_size experts_shared_outer_loras lora_use_virtual_experts
        lora_strict_loading lora_drain_wait_threshold watermark_config watermark_key
        watermark_key_b watermark_context_window watermark_mixing_probability
        watermark_max_probability watermark_default_enabled watermark_enforce_all lmcache_config_file
        flexkv_config_file unified_cache_external_linker_backend enable_linker_mla_dedup
        unified_cache_external_linker_config"""),
    "multimodal inputs and encoders: multimodal architectures are refused at start-up "
    "(hooks/model_check.py), and a text model has none": _names("""
        enable_multimodal mm_attention_backend enable_broadcast_mm_inputs_process
        enable_prefix_mm_cache mm_enable_dp_encoder mm_process_config mm_processor_worker_num
        mm_io_worker_num allowed_media_domains media_url_max_file_size_mb
        mm_preprocess_cache_size_mb trust_mm_content_hashes limit_mm_data_per_request
        enable_mm_global_cache image_processor_backend mm_global_cache_backend
        disable_fast_image_processor mm_feature_transport encoder_only language_only
        language_model_only encoder_transfer_backend encoder_urls encoder_bootstrap_port
        encoder_register_urls enable_adaptive_dispatch_to_encoder"""),
    "mixture-of-experts and dense-layer parallelism inside the model, after the input embedding "
    "and before the logits": _names("""
        moe_dp_size ep_size moe_dense_tp_size ep_join_rank_offset elastic_ep_initial_size max_ep_size
        enable_tp_lm_head_all_to_all enable_shared_experts_attn_tp shared_experts_tp_size
        enable_dense_mlp_attn_tp enable_single_batch_overlap enable_fused_moe_sum_all_reduce
        moe_a2a_backend enable_w4a4_mxfp4_megamoe deepep_v2_mode moe_runner_backend
        flashinfer_mxfp4_moe_precision deepep_mode fuseep_mode deepep_dispatcher_output_dtype
        ep_num_redundant_experts ep_dispatch_algorithm init_expert_location enable_eplb
        eplb_algorithm eplb_rebalance_num_iterations eplb_rebalance_layers_per_chunk
        eplb_min_rebalancing_utilization_threshold expert_distribution_recorder_mode
        expert_distribution_recorder_buffer_size expert_balancedness_report_mode deepep_config
        elastic_ep_backend enable_elastic_expert_backup mooncake_ib_device enable_waterfill
        ep_join_mode elastic_ep_scale_timeout disable_flashinfer_cutlass_moe_fp4_allgather
        disable_shared_experts_fusion enforce_shared_experts_fusion kt_weight_path kt_method
        kt_cpuinfer kt_threadpool_count kt_num_gpu_experts kt_max_deferred_experts_per_token
        flashinfer_a2a_dispatch_type enable_paged_experts paged_experts_num_resident"""),
    "how collectives are carried out: the concept-token mixture is reduced by the embedding "
    "module's own all-reduce, whatever implements it": _names("""
        enable_nccl_nvls disable_custom_all_reduce enable_mscclpp enable_scattered_sconv
        pre_warm_nccl boundary_reduction enable_quant_communications
        enable_flashinfer_allreduce_fusion enforce_disable_flashinfer_allreduce_fusion
        flashinfer_allreduce_fusion_backend enable_aiter_allreduce_fusion
        disable_aiter_allreduce_fusion_in_prefill disable_aiter_allreduce_fusion_in_decode
        enable_p2p_check"""),
    "CUDA graphs (none run on a CPU): a decode graph reads the state table's static buffers and "
    "an extend batch with concept positions runs eagerly (hooks/embedding.py); checked on a GPU "
    "by scripts/check_engine_modes.py, not by a test here": _names("""
        cuda_graph_config cuda_graph_backend_decode cuda_graph_backend_prefill
        cuda_graph_max_bs_decode cuda_graph_max_bs_prefill cuda_graph_bs_decode cuda_graph_bs_prefill
        cuda_graph_prefill_max_context disable_prefill_cuda_graph disable_decode_cuda_graph
        disable_cuda_graph disable_cuda_graph_padding enable_profile_cuda_graph enable_cudagraph_gc
        debug_cuda_graph cuda_graph_max_seq_len_prefill"""),
    "processes, devices and distribution set-up: which ranks run where, not what they compute": _names("""
        nccl_port dist_timeout dist_init_addr gated_launch_port nnodes node_rank base_gpu_id
        gpu_id_step random_seed watchdog_timeout soft_watchdog_timeout use_ray
        custom_sigquit_handler numa_node gc_threshold"""),
    "request kinds that never think: scoring (multi-item) requests are prefill only": _names("""
        enable_mis"""),
}
