/**
 * Shared shapes of platform CIDR discovery: what a platform module is given, and what it
 * reports back. Every module returns the same DiscoveryResult so that formatting, the CLI and
 * the tests never need to know which platform produced it.
 */

/** Every platform `interpose discover --platform` accepts, `auto` aside. */
export const PLATFORMS = [
  'gke',
  'eks',
  'aks',
  'iks',
  'icp',
  'openshift',
  'kubeadm',
  'kind',
  'k3s',
  'minikube',
  'docker-desktop',
] as const;

export type Platform = (typeof PLATFORMS)[number];

/** What a range is used for inside the cluster. */
export type CidrRole = 'pod' | 'service';

/** One range the discovery found, with where it came from. */
export interface CidrFinding {
  /** Normalised network address and prefix (host bits cleared), e.g. "10.96.0.0/12". */
  readonly cidr: string;
  readonly family: 4 | 6;
  readonly role: CidrRole;
  /** The command or file and field it was read from, e.g. "gcloud … describe: clusterIpv4Cidr". */
  readonly source: string;
  /** True when the value is the platform's documented default rather than something read. */
  readonly assumedDefault: boolean;
}

/** The outcome of discovering one cluster's ranges. */
export interface DiscoveryResult {
  readonly platform: Platform;
  readonly findings: readonly CidrFinding[];
  /** Things the user should know: defaults assumed, ranges that could not be found, caveats. */
  readonly notes: readonly string[];
  /** Set by auto-detection: why this platform was picked. */
  readonly detection?: string;
}

/** Options every platform module receives; each uses the ones that apply to it. */
export interface DiscoveryOptions {
  /** Cluster name (GKE, EKS, AKS, IKS). */
  readonly cluster?: string;
  /** GKE zone. */
  readonly zone?: string;
  /** GKE region or AWS region. */
  readonly region?: string;
  /** GCP project (GKE). */
  readonly project?: string;
  /** Azure resource group (AKS). */
  readonly resourceGroup?: string;
  /** kubectl / oc context for the kube-API-based platforms. */
  readonly context?: string;
  /** A configuration file: ICP's cluster/config.yaml or k3s's config.yaml. */
  readonly configFile?: string;
  /** EKS: include the VPC CIDRs even when the vpc-cni add-on is not listed (self-managed CNI). */
  readonly vpcCni?: boolean;
  /** Per-command timeout in milliseconds. */
  readonly timeoutMs: number;
  /** Environment for the platform CLIs (tests put fake CLIs first on PATH through this). */
  readonly env?: NodeJS.ProcessEnv;
  /** Root of the proc filesystem, for k3s's process scan (tests point it at a fake tree). */
  readonly procRoot?: string;
}

/** A platform module: reads one cluster's ranges. */
export type PlatformDiscoverer = (options: DiscoveryOptions) => Promise<DiscoveryResult>;

/** A platform configuration file (ICP's, k3s's) is read up to this size: they are a few KiB. */
export const DISCOVERY_CONFIG_MAX_BYTES = 1 << 20;
