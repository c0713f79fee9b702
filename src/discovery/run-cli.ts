import { CommandFailedError, CommandTimedOutError } from '../errors/index.js';
import { SystemExecutor, type CommandResult } from '../kernel/executor.js';
import { DiscoveryError } from './discovery-error.js';

/** The platform CLIs discovery runs. */
export type Tool = 'gcloud' | 'aws' | 'az' | 'ibmcloud' | 'oc' | 'kubectl';

interface ToolFacts {
  /** Where to get it. */
  readonly install: string;
  /** stderr fragments that mean "your login expired or is missing", and what to run. */
  readonly login: { readonly patterns: readonly RegExp[]; readonly fix: string };
  /** stderr fragments that mean "no such cluster/resource". */
  readonly notFound: readonly RegExp[];
  /** Other well-known failures worth their own fix. */
  readonly other?: ReadonlyArray<{ readonly pattern: RegExp; readonly what: string; readonly fix: string }>;
}

// Patterns are the messages each CLI prints today (checked against their docs and issue
// trackers); anything not matched falls through to a CommandFailedError carrying stderr, so an
// unknown message is never hidden.
const TOOLS: Record<Tool, ToolFacts> = {
  gcloud: {
    install: 'https://cloud.google.com/sdk/docs/install',
    login: {
      patterns: [
        /reauthentication/i,
        /problem refreshing (your current )?auth tokens/i,
        /do not currently have an active account/i,
        /invalid_grant/i,
        /gcloud auth login/i,
      ],
      fix: 'run `gcloud auth login` (and `gcloud config set project PROJECT`)',
    },
    notFound: [/code=404/, /NOT_FOUND/, /Not found: projects\//],
  },
  aws: {
    install: 'https://docs.aws.amazon.com/cli/latest/userguide/getting-started-install.html',
    login: {
      patterns: [
        /ExpiredToken/,
        /security token included in the request is (expired|invalid)/i,
        /Token has expired and refresh failed/i,
        /Error loading SSO Token/i,
        /Unable to locate credentials/i,
        /UnrecognizedClientException/,
        /InvalidClientTokenId/,
      ],
      fix: 'run `aws sso login` (SSO profiles) or `aws configure`, and check AWS_PROFILE',
    },
    notFound: [/ResourceNotFoundException/, /No cluster found for name/i, /InvalidVpcID\.NotFound/],
    other: [
      {
        pattern: /You must specify a region/i,
        what: 'aws has no region configured',
        fix: 'pass --region (or set AWS_REGION)',
      },
    ],
  },
  az: {
    install: 'https://learn.microsoft.com/cli/azure/install-azure-cli',
    login: {
      patterns: [/Please run 'az login'/i, /AADSTS\d+/, /refresh token has expired/i, /az login/],
      fix: 'run `az login` (and `az account set --subscription SUB`)',
    },
    notFound: [/ResourceNotFound/, /ResourceGroupNotFound/, /was not found/i],
  },
  ibmcloud: {
    install: 'https://cloud.ibm.com/docs/cli?topic=cli-getting-started',
    login: {
      patterns: [/Not logged in/i, /session (has )?expired/i, /token is expired/i, /ibmcloud login/],
      fix: 'run `ibmcloud login` (add --sso for a federated ID)',
    },
    notFound: [/could not be found/i, /\bA0006\b/],
    other: [
      {
        pattern: /not a registered command/i,
        what: "the ibmcloud 'ks' plug-in is not installed",
        fix: 'run `ibmcloud plugin install container-service`',
      },
    ],
  },
  oc: {
    install: 'https://docs.openshift.com/container-platform/latest/cli_reference/openshift_cli/getting-started-cli.html',
    login: {
      patterns: [/must be logged in/i, /\bUnauthorized\b/, /token (has )?expired/i],
      fix: 'run `oc login API_SERVER_URL`',
    },
    notFound: [/\(NotFound\)/, /doesn't have a resource type/i],
  },
  kubectl: {
    install: 'https://kubernetes.io/docs/tasks/tools/',
    login: {
      patterns: [/must be logged in/i, /\bUnauthorized\b/, /token (has )?expired/i, /provide credentials/i],
      fix: "refresh the kube context's credentials (re-run your platform's get-credentials / login command)",
    },
    notFound: [/\(NotFound\)/, /doesn't have a resource type/i],
    other: [
      {
        pattern: /Unable to connect to the server|connection to the server .* was refused|no configuration has been provided|current-context is not set|context was not found/i,
        what: 'kubectl cannot reach a cluster',
        fix: 'check `kubectl config current-context` (or pass --context) and that the cluster is running',
      },
    ],
  },
};

/** How one run should treat its outcome. */
export interface RunCliOptions {
  readonly timeoutMs: number;
  readonly env?: NodeJS.ProcessEnv;
  /** What a "not found" answer means for this call and what to do, e.g. "check --cluster". */
  readonly notFoundFix?: string;
}

/**
 * Runs a platform CLI and returns its stdout. Failures become errors that name the CLI and the
 * fix: not installed (ENOENT) → where to install it; expired login → the login command; not
 * found → the caller's hint; a timeout → how long it waited. Anything else is a
 * CommandFailedError with the CLI's own stderr.
 */
export async function runCli(tool: Tool, args: readonly string[], options: RunCliOptions): Promise<string> {
  const facts = TOOLS[tool];
  const argv = [tool, ...args];
  // No stdin (the Executor gives none) and no prompts or pagers: a CLI waiting for an answer
  // would only hit the timeout.
  const executor = new SystemExecutor(options.timeoutMs, { CLOUDSDK_CORE_DISABLE_PROMPTS: '1', AWS_PAGER: '', ...options.env });
  let result: CommandResult;
  try {
    result = await executor.run(argv);
  } catch (err) {
    if (err instanceof CommandTimedOutError) {
      throw new DiscoveryError(
        `${argv.join(' ')} did not answer within ${options.timeoutMs / 1000} s and was stopped`,
        `check the network and that ${tool} works on its own; pass --timeout SECONDS to wait longer`,
      );
    }
    if (err instanceof CommandFailedError && (err.cause as { code?: string } | undefined)?.code === 'ENOENT') {
      throw new DiscoveryError(`the ${tool} CLI is not installed (not found on PATH)`, `install it from ${facts.install}`);
    }
    throw err;
  }
  // Without the final newline, as callers have always had it.
  if (result.exitCode === 0) return result.stdout.replace(/\r?\n$/, '');

  const stderr = result.stderr;
  const firstLine = stderr.trim().split('\n').find((l) => l.trim() !== '') ?? '';
  if (facts.login.patterns.some((p) => p.test(stderr))) {
    throw new DiscoveryError(`${tool}: not logged in or the login expired (${firstLine.trim()})`, facts.login.fix);
  }
  for (const o of facts.other ?? []) {
    if (o.pattern.test(stderr)) throw new DiscoveryError(`${o.what} (${firstLine.trim()})`, o.fix);
  }
  if (facts.notFound.some((p) => p.test(stderr))) {
    throw new DiscoveryError(
      `${tool}: not found (${firstLine.trim()})`,
      options.notFoundFix ?? `check the names passed to ${argv.join(' ')}`,
    );
  }
  throw new CommandFailedError(argv, result.exitCode, stderr, { context: `running ${tool}` });
}

/** The argv as a user would type it, for messages and sources. */
export function shown(tool: Tool, args: readonly string[]): string {
  return [tool, ...args].join(' ');
}
