'use strict';
// Which linkbox binary to run: $LINKBOX_BINARY, else the one in this platform's package
// (`@linkbox/<platform>-<arch>`, an optional dependency npm installs only where its `os` and
// `cpu` match, the way esbuild and Biome ship theirs).

const SUPPORTED = Object.freeze({ 'linux-x64': '@linkbox/linux-x64' });

/**
 * The path of the linkbox binary for this machine (or `platform`/`arch`).
 * @param {{platform?: string, arch?: string, env?: Record<string, string | undefined>}} [where]
 * @returns {string}
 */
function binaryPath(where = {}) {
  const env = where.env || process.env;
  if (env.LINKBOX_BINARY) {
    return env.LINKBOX_BINARY;
  }
  const target = `${where.platform || process.platform}-${where.arch || process.arch}`;
  const pkg = SUPPORTED[target];
  if (!pkg) {
    throw new Error(
      `linkbox has no binary for ${target}; supported platforms: ${Object.keys(SUPPORTED).join(', ')} ` +
        '(or set LINKBOX_BINARY to a linkbox binary built from source)',
    );
  }
  try {
    return require.resolve(`${pkg}/bin/linkbox`);
  } catch {
    throw new Error(
      `the package ${pkg}, which holds linkbox's binary for ${target}, is not installed: ` +
        'install it next to linkbox (npm installs it unless optional dependencies are omitted), ' +
        'or set LINKBOX_BINARY',
    );
  }
}

module.exports = { binaryPath, SUPPORTED };
