// End-to-end test of the browser UI with Debian's chromium (headless, playwright-core), against
// a real server whose jobs run real playbooks on the loopback node. Started by
// server/tests/web.rs, which passes:
//   PRESSLUFT_URL, PRESSLUFT_EMAIL, PRESSLUFT_PASSWORD  the server and its admin
//   NODE_NAME     the provisioned node to create the site on
//   NODE_SSH_PORT the loopback sshd, to register a second node through the UI
//   SITE_SLUG     a slug no other test uses
//   SCREENSHOTS   where the main screens are saved
//   CHROMIUM      the browser (default /usr/bin/chromium)
// Exits non-zero with the reason on the first thing that does not work.
import { mkdir, readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { join } from "node:path";
import { chromium } from "playwright-core";

const axeSource = await readFile(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

const env = (name, fallback) => {
  const value = process.env[name] ?? fallback;
  if (value === undefined) throw new Error(`${name} is not set`);
  return value;
};
const url = env("PRESSLUFT_URL");
// Every wait scales with the suite's one patience setting (see testkit/src/lib.rs).
const patience = Number(env("PRESSLUFT_TEST_PATIENCE", "1"));
if (!(patience > 0)) throw new Error("PRESSLUFT_TEST_PATIENCE is not a positive number");
const STEP = 5 * 60_000 * patience;
const JOB = 20 * 60_000 * patience;
const shots = env("SCREENSHOTS");
const slug = env("SITE_SLUG");
await mkdir(shots, { recursive: true });

const browser = await chromium.launch({
  executablePath: env("CHROMIUM", "/usr/bin/chromium"),
  headless: true,
  // Preview addresses are *.sslip.io names of the loopback node; there is no DNS here.
  args: ["--no-sandbox", "--host-resolver-rules=MAP *.sslip.io 127.0.0.1"],
});
const context = await browser.newContext({ viewport: { width: 1366, height: 900 } });
context.setDefaultTimeout(STEP);
const page = await context.newPage();
const problems = [];
page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
page.on("console", (message) => message.type() === "error" && problems.push(`console: ${message.text()}`));
const shot = async (name) => {
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
  await accessible(name);
};

/** axe-core's WCAG 2 A/AA rules on the page as it is: any serious or critical finding fails. */
async function accessible(name) {
  // Evaluated through the debugging protocol: the page's CSP (script-src 'self') stays on.
  await page.evaluate(axeSource);
  const violations = await page.evaluate(async () => {
    const results = await window.axe.run(document, { runOnly: ["wcag2a", "wcag2aa"] });
    return results.violations
      .filter((v) => v.impact === "serious" || v.impact === "critical")
      .map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => n.target.join(" ")).slice(0, 3).join(", ")}`);
  });
  if (violations.length > 0) problems.push(`accessibility on ${name}: ${violations.join("; ")}`);
}
const step = (what) => console.log(`- ${what}`);

async function login() {
  await page.getByLabel("Email").fill(env("PRESSLUFT_EMAIL"));
  await page.getByLabel("Password").fill(env("PRESSLUFT_PASSWORD"));
  await page.getByRole("button", { name: "Log in" }).click();
  await page.getByRole("navigation", { name: "main" }).waitFor();
}

try {
  step("log in");
  await page.goto(url);
  await page.getByRole("heading", { name: "Pressluft" }).waitFor();
  await shot("01-login");
  await login();

  step("nodes: the provisioned node, and one registered through the form");
  await page.getByRole("link", { name: "Nodes" }).click();
  await page.getByRole("heading", { name: "Register a node" }).waitFor();
  const nodeRow = page.getByRole("row").filter({ hasText: env("NODE_NAME") }).first();
  await nodeRow.getByText("active").waitFor();
  await page.getByLabel(/^Name\b/).fill("ui-node");
  await page.getByLabel("Hostname or IP").fill("127.0.0.1");
  await page.getByLabel("SSH port").fill(env("NODE_SSH_PORT"));
  await page.getByRole("button", { name: "Check the host key" }).click();
  await page.getByText(/SHA256:/).first().waitFor();
  await page.getByRole("button", { name: "Pin this key and register" }).click();
  await page.getByRole("row").filter({ hasText: "ui-node" }).getByText("pending").waitFor();
  await shot("02-nodes");

  step("create a site and watch its job live to success");
  await page.getByRole("link", { name: "Sites" }).click();
  await page.getByRole("heading", { name: "Create a site" }).waitFor();
  await page.getByLabel(/^Name\b/).fill("UI Shop");
  await page.getByLabel(/Slug/).fill(slug);
  await page.getByLabel("Node", { exact: true }).selectOption({ label: env("NODE_NAME") });
  await page.getByRole("button", { name: "Create site" }).click();
  const progress = page.locator(".job-progress").first();
  await progress.waitFor();
  await page.getByText(/step \d+\/\d+/).first().waitFor({ timeout: JOB });
  await shot("03-site-creating");
  await page.locator('.job-progress[data-status="succeeded"]').first().waitFor({ timeout: JOB });

  step("the site page");
  await page.getByRole("link", { name: "UI Shop" }).click();
  await page.getByRole("heading", { name: /UI Shop/ }).waitFor();
  await page.locator(".facts").getByText("active").first().waitFor();
  await shot("04-site");

  step("back up now, and see the backup listed");
  await page.getByRole("button", { name: "Back up now" }).click();
  await page.getByRole("button", { name: "Yes, back up now" }).click();
  await page.locator('.job-progress[data-status="succeeded"]').first().waitFor({ timeout: JOB });
  await page.getByRole("table", { name: "backups" }).getByText("completed").first().waitFor({ timeout: STEP });
  await shot("05-backup");

  step("open WordPress admin (magic login in a new tab)");
  const [admin] = await Promise.all([
    context.waitForEvent("page"),
    page.getByRole("button", { name: "Open WordPress admin" }).click(),
  ]);
  await admin.waitForURL(/\/wp-admin\//, { timeout: STEP });
  await admin.getByText("Dashboard").first().waitFor({ timeout: STEP });
  // The site's pages get no handle on the control plane's window.
  if (await admin.evaluate(() => window.opener !== null)) throw new Error("the WordPress tab has an opener");
  // WordPress's own admin page: screenshot only, its accessibility is not ours.
  await admin.screenshot({ path: join(shots, "06-wp-admin.png") });
  await admin.close();

  step("jobs, live, and one job's steps and log");
  await page.getByRole("link", { name: "Jobs" }).click();
  const jobs = page.getByRole("table", { name: "jobs" });
  await jobs.getByText("backup_create").first().waitFor();
  await jobs.getByRole("link").filter({ hasText: /create site/ }).first().click();
  await page.getByRole("heading", { name: "Steps" }).waitFor();
  await page.locator("ol.steps li").first().waitFor();
  await shot("07-job");

  step("activity");
  await page.getByRole("link", { name: "Activity" }).click();
  await page.getByRole("table", { name: "audit log" }).getByText("magic login").first().waitFor();
  await shot("08-activity");

  step("an expired session goes back to the login");
  await page.evaluate(() => sessionStorage.setItem("pressluft.token", "expired-token"));
  await page.reload();
  await page.getByText("Your session ended; log in again.").waitFor();
  await login();

  step("log out");
  await page.getByRole("button", { name: "Log out" }).click();
  await page.getByRole("button", { name: "Log in" }).waitFor();

  if (problems.length > 0) throw new Error(problems.join("\n"));
  console.log("ok");
} catch (error) {
  await page.screenshot({ path: join(shots, "failure.png"), fullPage: true }).catch(() => {});
  console.error(`FAILED: ${error.stack ?? error}`);
  if (problems.length > 0) console.error(problems.join("\n"));
  process.exitCode = 1;
} finally {
  await browser.close();
}
