# rules for stage: data (see rules/common.smk for paths and input functions)
