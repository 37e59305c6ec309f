// The ES module entry: the same API as index.js.
import linkbox from './index.js';

export const {
  startLinkbox,
  newM2mKey,
  binaryPath,
  Linkbox,
  Tenant,
  LinkboxError,
  StartError,
  ControlError,
  VerificationError,
} = linkbox;
export default linkbox;
