# rules for stage: eval (see rules/common.smk for paths and input functions)
