# rules for stage: heads (see rules/common.smk for paths and input functions)
