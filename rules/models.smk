# rules for stage: models (see rules/common.smk for paths and input functions)
