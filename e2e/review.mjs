// Browser end to end of the case system's review UI, in Debian's headless
// Chromium driven by playwright-core. Started by crates/vigil-cli/tests/
// browser.rs against a real `vigil case serve` holding real signed packages.
//
// Environment: BASE_URL, OUT_DIR (screenshots), PASSWORD (of op1, sup1,
// sup2), PLATE (a plate on the packages), CHROMIUM (default
// /usr/bin/chromium).
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const base = process.env.BASE_URL;
const out = process.env.OUT_DIR ?? "target/e2e";
const password = process.env.PASSWORD;
const plate = process.env.PLATE;
if (!base || !password || !plate) {
  console.error("review.mjs: set BASE_URL, PASSWORD and PLATE");
  process.exit(2);
}
mkdirSync(out, { recursive: true });

function check(cond, message) {
  if (!cond) throw new Error(message);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
  ],
});

async function session(user) {
  const context = await browser.newContext({ viewport: { width: 1366, height: 900 } });
  const page = await context.newPage();
  page.on("dialog", (d) => d.accept());
  await page.goto(`${base}/queue`);
  check(page.url().includes("/login?next="), `${user}: the queue should ask for a login, got ${page.url()}`);
  await page.fill("input[name=username]", user);
  await page.fill("input[name=password]", password);
  await Promise.all([page.waitForURL(/\/queue/), page.click("button[type=submit]")]);
  return { context, page };
}

async function shot(page, name) {
  await page.screenshot({ path: join(out, name), fullPage: true });
  console.log(`screenshot ${join(out, name)}`);
}

let failed = false;
try {
  // 1. An operator opens the queue, plays the first event's clip and
  //    confirms it with the keyboard shortcut.
  {
    const { context, page } = await session("op1");
    const rows = page.locator("#queue tbody tr");
    const count = await rows.count();
    check(count >= 2, `the queue should list the events, found ${count}`);
    await shot(page, "01-queue.png");
    await page.keyboard.press("j");
    await Promise.all([page.waitForURL(/\/events\//), page.keyboard.press("Enter")]);
    const first = page.url();
    const clip = page.locator("#clip");
    await clip.evaluate((v) => { v.muted = true; return v.play(); });
    await page.waitForFunction(() => {
      const v = document.getElementById("clip");
      return v && v.currentTime > 0.3;
    }, null, { timeout: 15000 });
    const played = await clip.evaluate((v) => ({ t: v.currentTime, w: v.videoWidth, d: v.duration }));
    check(played.w > 0 && played.t > 0.3, `the clip should play, got ${JSON.stringify(played)}`);
    await clip.evaluate((v) => v.pause());
    check(await page.locator("svg.signal-chart rect").count() >= 2, "the signal chart should draw the phases");
    check(await page.locator("svg.trajectory polyline").count() === 1, "the trajectory should be drawn");
    await shot(page, "02-event-playing.png");
    await Promise.all([page.waitForURL((u) => u.toString() !== first), page.keyboard.press("c")]);
    await page.goto(first);
    const badge = (await page.locator("h1 .badge").innerText()).trim();
    check(badge === "Confirmed", `the event should be confirmed, shows "${badge}"`);
    await shot(page, "03-confirmed.png");
    await context.close();
  }

  // 2. A supervisor proposes a dismissal; they cannot approve it
  //    themselves; a second supervisor approves it.
  let dismissed;
  {
    const { context, page } = await session("sup1");
    await page.locator("#queue tbody tr a.open").first().click();
    await page.waitForURL(/\/events\//);
    dismissed = page.url();
    await page.keyboard.press("d");
    await page.selectOption("#dismiss-reason", "emergency_vehicle");
    await page.fill("#dismiss-form textarea", "Ambulance on an emergency call, lights on in the clip");
    await Promise.all([page.waitForLoadState("load"), page.click("#dismiss")]);
    await page.waitForURL(dismissed);
    const badge = (await page.locator("h1 .badge").innerText()).trim();
    check(badge === "Dismissal awaiting approval", `after proposing: "${badge}"`);
    check(await page.locator("#approve").count() === 0, "the proposer must not be offered the approval");
    await shot(page, "04-dismissal-pending.png");
    await context.close();
  }
  {
    const { context, page } = await session("sup2");
    await page.goto(`${base}/approvals`);
    check(await page.locator("#approvals tbody tr").count() === 1, "one dismissal waits");
    await shot(page, "05-approvals.png");
    await page.locator("#approvals a").first().click();
    await page.waitForURL(dismissed);
    await page.fill("form.approve input[name=note]", "Checked the clip: ambulance");
    await Promise.all([page.waitForLoadState("load"), page.click("#approve")]);
    const badge = (await page.locator("h1 .badge").innerText()).trim();
    check(badge === "Dismissed", `after approval: "${badge}"`);
    await shot(page, "06-dismissal-approved.png");
    await context.close();
  }

  // 3. A citizen looks the plate up: the confirmed event only.
  {
    const context = await browser.newContext({ viewport: { width: 1100, height: 700 } });
    const page = await context.newPage();
    await page.goto(`${base}/lookup`);
    await page.fill("input[name=plate]", plate);
    await Promise.all([page.waitForURL(/plate=/), page.click("button[type=submit]")]);
    const found = await page.locator("#results tbody tr").count();
    check(found === 1, `the lookup should show the one confirmed violation, shows ${found}`);
    const sheet = await page.locator("#results a").first().getAttribute("href");
    const res = await page.request.get(`${base}${sheet}`);
    check(res.status() === 200 && res.headers()["content-type"] === "image/jpeg", `evidence sheet: ${res.status()}`);
    await shot(page, "07-public-lookup.png");
    await context.close();
  }
  console.log("browser end to end: all steps passed");
} catch (e) {
  failed = true;
  console.error(`browser end to end FAILED: ${e.message}`);
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
