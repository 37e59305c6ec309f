// Compiled (not run) by CI with `tsc --noEmit --strict` against the installed package: the
// types say what the API takes and gives, and refuse what it does not take.
import {
  startLinkbox,
  ControlError,
  StartError,
  VerificationError,
  type ClockView,
  type Delivery,
  type JournalEntry,
  type Linkbox,
  type Tenant,
} from 'linkbox';

// What a Vitest or Jest `globalSetup` looks like.
export default async function setup(): Promise<() => Promise<void>> {
  const linkbox: Linkbox = await startLinkbox({ seed: 1, args: ['--rate-limits', 'off'], startTimeoutMs: 5000 });
  const url: string = linkbox.url;
  const key: string = linkbox.m2mKey();
  const token: string = await linkbox.leafToken({ username: 'qa@example.com', password: 'secret' });
  const deliveries: Delivery[] = await linkbox.webhooks({ key });
  const status: 'pending' | 'delivered' | 'failed' | undefined = deliveries[0]?.status;
  const matched: number = await linkbox.verify({ key, method: 'POST', bodyJson: { referenceId: 'x' }, count: { atLeast: 1 } });
  const clock: ClockView = await linkbox.advance(60, { key: token });
  const tenant: Tenant = await linkbox.tenant();
  const entries: JournalEntry[] = await tenant.requests({ leaf: true, status: '2xx' });
  const headers: { 'X-API-Key': string } = tenant.m2mHeaders;
  void [url, status, matched, clock.offsetSeconds, entries[0]?.durationMs, headers];
  try {
    await linkbox.reset();
  } catch (error) {
    if (error instanceof ControlError) void error.code;
    if (error instanceof VerificationError) void error.body;
    if (error instanceof StartError) void error.stderr;
  }
  // @ts-expect-error advance() takes a number of seconds
  await linkbox.advance('60');
  // @ts-expect-error a Tenant's calls carry its own key
  await tenant.webhooks({ key });
  // @ts-expect-error there is no such option
  await startLinkbox({ port: 8642 });
  return () => linkbox.stop();
}
