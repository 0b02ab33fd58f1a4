// Package buildargs will hold --build-arg, --env, --env-file and --secret
// handling (issue: build args, env, secrets and packer.toml). The build
// package already accepts step environment through build.Options.StepEnv.
package buildargs
