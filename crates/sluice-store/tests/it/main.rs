//! The storage suite: every test in [`suite`] runs against SQLite and against a throwaway
//! PostgreSQL database (`SLUICE_TEST_POSTGRES_URL`, default the local server). PostgreSQL being
//! unreachable fails the run; it is never skipped.

mod suite;
mod support;

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let db = crate::support::TestDb::sqlite().await;
                    crate::suite::$name(&db).await;
                    db.finish().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let db = crate::support::TestDb::postgres().await;
                    crate::suite::$name(&db).await;
                    db.finish().await;
                }
            )*
        }
    };
}

on_both_backends!(
    access_keys_round_trip_and_conflict,
    concurrent_transactions_commit_alone_or_together,
    held_inserts_are_seen_by_the_next_statement,
    action_types_insert_list_delete,
    deleted_action_type_cannot_be_recreated,
    a_deleted_action_type_is_restored_only_as_it_was,
    pipeline_versions_are_kept,
    pipelines_page_by_name,
    deleting_a_pipeline_removes_versions_and_tags,
    deleting_a_pipeline_removes_its_executions,
    a_pipeline_hold_names_its_version_and_incarnation,
    a_guarded_transaction_writes_only_while_its_guard_holds,
    a_shared_hold_locks_and_reads_an_execution,
    finishing_a_job_returns_its_stage,
    held_writes_of_one_row_apply_in_order,
    concurrent_acknowledgements_each_get_their_own_answer,
    concurrent_claims_share_out_their_queues,
    an_execution_lock_waits_for_its_holder,
    tags_overwrite_limit_and_page,
    changes_append_events,
    reopening_applies_no_migration_twice,
    jobs_claim_acknowledge_finish,
    queue_vacuum_leaves_jobs_claimable,
    expired_leases_requeue_or_time_out,
    released_job_is_queued_as_before_its_claim,
    acknowledgement_leases_for_the_jobs_timeout,
    job_reads_with_its_execution_and_declaration,
    job_inserted_claimed_is_stored_as_a_claim_leaves_it,
    concurrent_claims_hand_out_each_job_once,
    objects_put_replace_list_delete,
    third_party_types_keep_their_client,
    document_versions_default_and_delete,
    documents_page_by_name_with_filters,
    automation_executions_filter_and_page,
    cf_query_every_operator_matches_exactly,
    cf_query_filter_or_scope_and_keyword,
    cf_query_sorts_pages_and_shapes_rows,
    cf_query_bad_input_is_a_typed_error,
    cf_resources_found_by_key_in_their_workspace,
    cf_scheduled_accounts_go_to_one_store_per_hour,
    cf_plugins_register_and_repoint,
    cf_jobs_in_progress_of_an_account,
    cf_job_read_for_a_change_holds_off_other_writers,
    cf_stat_groups_counts_and_sorts,
    cf_stat_accumulators,
    cf_stat_date_formats_distinct_and_raw_rows,
    cf_stat_bad_input_is_a_typed_error,
);
