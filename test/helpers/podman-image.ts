/**
 * The interpose image as the podman tests use it: which image (INTERPOSE_IMAGE, else the one
 * scripts/build-image.sh builds), the podman options this kind of host needs, and whether the
 * tests can run — outside CI a missing podman or image skips them; under CI a missing image is a
 * failure, since CI must build and run it.
 */
import { execa } from 'execa';

export const IMAGE = process.env.INTERPOSE_IMAGE || 'localhost/interpose:dev';

/**
 * Podman as root on this kind of host: runc (crun lacks the cgroup v1 mode), and ulimits within
 * the sandbox's hard limits (podman's defaults for root exceed them and runc fails to set them).
 */
export const PODMAN_GLOBAL = ['--runtime', 'runc'];
export const PODMAN_LIMITS = ['--ulimit', 'nofile=16384:16384', '--ulimit', 'nproc=4096:4096'];

/** Why the image tests cannot run here, or undefined when they can; throws under CI without the image. */
export async function podmanImageSkipReason(): Promise<string | undefined> {
  const podman = await execa('podman', ['--version'], { reject: false });
  if (podman.exitCode !== 0) return 'podman is not installed (scripts/install-system-deps.sh installs it)';
  const exists = await execa('podman', ['image', 'exists', IMAGE], { reject: false });
  if (exists.exitCode !== 0) {
    const message = `image ${IMAGE} is not built (bash scripts/build-image.sh builds it)`;
    if (process.env.CI) throw new Error(`${message}: CI must build and run it`);
    return message;
  }
  return undefined;
}
