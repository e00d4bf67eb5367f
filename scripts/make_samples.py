"""Write the sample datasets that the presets train on, under presets/data/.

    .venv/bin/python scripts/make_samples.py               # rewrite presets/data/ in place
    .venv/bin/python scripts/make_samples.py --out DIR     # write the same files under DIR

Stdlib only and seeded, so the committed files are byte for byte what this script writes
(tests/test_presets.py re-runs it and compares). Change the templates here, never the files.

All three datasets describe one fictional company, Kestrel Home (cameras, locks, thermostats
and a subscription), so they agree with each other: tickets name the products the corpus
documents, and the preferred replies in the DPO pairs state the corpus's facts.
"""

from __future__ import annotations

import argparse
import json
import random
import re
from pathlib import Path

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "presets" / "data"


def _sections(text: str) -> dict[str, list[str]]:
    """'[name]' headed blocks, one item per line; an indented line continues the item above."""
    sections: dict[str, list[str]] = {}
    items: list[str] = []
    for line in text.strip().splitlines():
        if line.startswith("["):
            items = sections.setdefault(line.strip("[] "), [])
        elif line.startswith("  ") and items:
            items[-1] += " " + line.strip()
        elif line.strip():
            items.append(line.strip())
    return sections


def _keyed(items: list[str]) -> dict[str, str]:
    return dict(item.split(": ", 1) for item in items)


def _product_table(text: str) -> dict[str, dict[str, str]]:
    table = {}
    for header, items in _sections(text).items():
        name, code, price = header.split(" | ")
        table[name] = {"code": code, "price": price, **_keyed(items)}
    return table


# ---------------------------------------------------------------- shared facts

# [name | model code | price in dollars], then facts written to follow "The <name> ..." or
# "To reset the <name>, ...", so the corpus and the DPO replies can reuse them verbatim.
PRODUCTS = _product_table("""
[Kestrel Hub | KH-100 | 129]
role: the controller that links every Kestrel device to the network and runs automations locally
power: runs from its 12 V USB-C adapter and has no battery, so it stops during a power cut
setup: connect it to the router by Ethernet or pick Wi-Fi in the app; one hub takes 64 devices
reset: hold the pairing button on the back for 10 seconds until the light ring blinks amber
lights: white means all is well, pulsing blue means pairing, blinking amber means no internet
offline: restart the router, unplug the hub for 30 seconds, then try the Ethernet cable
compat: works with Alexa, Google Home and, through Matter, Apple Home
features: adds Matter for Apple Home; adds sunrise and sunset triggers; backs up automations
[Kestrel Cam 2 | KC-200 | 79]
role: an indoor 2K camera with 8-metre night vision, two-way audio and a privacy shutter
power: runs from a USB-C cable and 5 V adapter; it has no battery
setup: place it within reach of 2.4 GHz Wi-Fi and scan the QR code on its base in the app
reset: press the reset pinhole next to the microSD slot for 5 seconds until it chimes twice
lights: solid green means streaming, blinking green means connecting, red means no cloud access
offline: check that the Wi-Fi is 2.4 GHz, move it nearer the router and unplug it for 10 seconds
compat: works with Alexa and Google Home, but not with Apple Home
features: adds on-device person and pet detection; adds activity zones; adds microSD recording
[Kestrel Cam Outdoor | KC-300 | 149]
role: a weatherproof IP65 2K camera with a spotlight and a siren, for walls and driveways
power: runs on a rechargeable battery that lasts about six months, or on the Kestrel Solar Panel
setup: charge it fully, hold the sync button under the rubber flap for 2 seconds, scan the code
reset: hold the sync button under the rubber flap for 15 seconds until the light turns purple
lights: blinking blue means ready to pair, solid blue means connected, red means battery low
offline: charge the battery and, if the Wi-Fi signal is under two bars, add a Kestrel Chime
compat: works with Alexa and Google Home, but not with Apple Home
features: adds a quiet mode without spotlight; adds a low-battery alert at 20 percent; links sirens
[Kestrel Doorbell | KD-100 | 119]
role: a video doorbell with a head-to-toe view and recorded quick replies for visitors
power: runs on a battery that lasts about four months, or on doorbell wiring with 8-24 V AC
setup: mount the bracket, click the doorbell in and scan the QR code on its back in the app
reset: hold the button on the back of the doorbell for 20 seconds until the ring flashes white
lights: a spinning white ring means starting up, blue means pressed, red means wrong Wi-Fi password
offline: press the button once to wake it, check the battery, and re-enter the Wi-Fi password
compat: works with Alexa and Google Home; the chime can also play on the Kestrel Hub
features: adds quick replies; adds package detection; adds a silent mode for the night
[Kestrel Thermostat | KT-100 | 169]
role: a learning thermostat that builds a heating schedule from your changes within a week
power: takes power from the heating's C-wire, or from the Power Adapter Kit included in the box
setup: switch the heating off at the breaker, photograph the old wiring, then follow the app
reset: press and hold the dial for 12 seconds, then confirm Reset on the screen
lights: the ring glows orange while heating, blue while cooling, and blinks red on a wiring fault
offline: check Settings > Network on the thermostat; heating follows the last schedule meanwhile
compat: works with Alexa, Google Home and Apple Home
features: adds an eco mode when everyone is away; adds a monthly energy report; adds early start
[Kestrel Smart Lock | KL-100 | 199]
role: a keypad deadbolt that opens with the app, a PIN code or the physical key
power: runs on four AA batteries that last about nine months; a 9 V battery opens it when flat
setup: fit it to the existing door cylinder, insert the batteries and scan the code in the cover
reset: remove one battery, hold the logo button while putting it back, and keep holding 5 seconds
lights: the keypad flashes green when unlocking, red for a wrong code and amber for low batteries
offline: keep it within 10 metres of the Kestrel Hub and replace batteries below 15 percent
compat: works with Alexa and Google Home for locking; unlocking by voice needs a PIN code
features: adds time-limited guest codes; adds auto-lock after a delay; logs which code was used
[Kestrel Sensor Pack | KS-100 | 59]
role: three door and window contact sensors plus one motion sensor, linked through the hub
power: runs on CR2032 coin cells that last about two years; the app shows each battery level
setup: pull out the battery tab, press the button once and place it within 10 metres of the hub
reset: press the sensor's button five times quickly until its light blinks three times
lights: one blink means an event was sent to the hub, three blinks mean it is ready to pair
offline: move the sensor closer to the hub, replace the coin cell, and pair it again if needed
compat: works through the Kestrel Hub only, so it shows in other apps when the hub does
features: adds a vacation mode; adds open-window warnings while heating; adds temperature readings
""")
PLAN_PRICES = [
    ("Kestrel Plus", "$4.99"),
    ("Kestrel Plus", "$49.00"),
    ("Kestrel Plus Family", "$9.99"),
    ("Kestrel Pro", "$29.00"),
]

# Policy questions customers ask: Q question, A correct answer, W plausible wrong answer.
_QA = _sections("""
[qa]
Q: How long do I have to return a Kestrel device?
A: You can return any device within 30 days of delivery for a full refund. Start the return
  under Orders in the Kestrel app and we will email you a prepaid label.
W: Returns are only accepted within 7 days, and you pay for the return shipping yourself.
Q: What does the warranty cover?
A: Every Kestrel device has a two-year warranty against hardware faults. If a fault is
  confirmed we ship a replacement, so keep the serial number from the box or the app.
W: The warranty lasts 90 days and only covers devices bought in one of our own stores.
Q: How do I cancel my Kestrel Plus subscription?
A: Go to Account > Subscription > Cancel in the app. Your plan stays active until the end of
  the current billing period and your recordings are kept until then.
W: Subscriptions can only be cancelled by letter, and your recordings are deleted that day.
Q: How long does a refund take?
A: Refunds go back to the original payment method within 5 to 10 business days after we
  receive the returned device.
W: Refunds are paid as store credit only and take about three months.
Q: How long are my camera recordings kept?
A: Without a plan you get 24 hours of event clips. Kestrel Plus keeps 30 days for up to five
  cameras, Plus Family 60 days for any number of cameras, and Kestrel Pro 90 days.
W: All recordings are kept forever for free, so you never need a plan.
Q: When can I reach customer support?
A: Chat and phone support are open Monday to Friday 08:00 to 20:00 and Saturday 09:00 to 17:00
  CET. Kestrel Pro customers also have a 24/7 line for emergencies.
W: Support is only available by email and we answer within 30 days.
Q: How do I give my family access to our cameras?
A: Open Home settings > Members > Invite and choose Member or Admin. The invitation link is
  valid for 7 days; send a new one if it expires.
W: Share your own password with them; a Kestrel account cannot have more than one person.
Q: How do I turn on two-factor authentication?
A: Go to Account > Security > Two-factor authentication and pick an authenticator app or SMS.
  Save the recovery codes somewhere safe in case you lose your phone.
W: Two-factor authentication is only available on the Kestrel Pro plan.
Q: Which countries do you ship to, and how fast?
A: We ship to the EU, the UK, the US and Canada. Standard delivery takes 3 to 5 business days;
  express orders placed before 14:00 arrive the next business day.
W: We only ship within the Netherlands, and every order takes about four weeks.
""")["qa"]
POLICY_QA = [tuple(line[3:] for line in _QA[i : i + 3]) for i in range(0, len(_QA), 3)]

# ---------------------------------------------------------------- (a) support-ticket triage

CATEGORIES = ["billing", "technical", "account", "shipping", "other"]
PRIORITIES = ["low", "medium", "high"]
TRIAGE_INSTRUCTION = (
    "Classify the support ticket. Answer only with a JSON object with the keys "
    '"category" (billing, technical, account, shipping or other) and '
    '"priority" (low, medium or high).'
)
TICKETS_PER_CELL = 24  # per category x priority: 4 for validation, 20 for training
VALIDATION_PER_CELL = 4

# The category follows from the problem; the priority from its severity (outage, lost data,
# double charge, security, safety, legal = high; questions = low), often echoed by the tone.
PROBLEMS = _sections("""
[billing high]
I was charged twice for my {plan} subscription this month, {price} both times.
You charged my card {amount} three times for order {order}. I only placed one order!
I cancelled {plan} weeks ago and you still took {price} from my account today.
There is a charge of {amount} from Kestrel on my statement that I never authorised.
Our company card was charged {price} twice for the {plan} renewal and is now over its limit.
My refund of {amount} was promised {days} days ago and instead I got charged again.
[billing medium]
My invoice for {month} says {amount}, which is more than {plan} costs on your website.
The discount code from your newsletter didn't apply to my {product} order.
I returned the {product} {days} days ago and the refund still hasn't shown up.
My card was declined when {plan} tried to renew, but it works everywhere else.
I switched from {plan} to a cheaper plan but my last bill still shows {price}.
I was billed monthly even though I switched {plan} to yearly billing in {month}.
[billing low]
Do you offer annual billing for {plan}, and is it cheaper than paying monthly?
Could you send me a copy of the invoice for order {order}? I need it for my expenses.
What payment methods do you accept besides credit cards?
Is sales tax included in the {plan} price or added at checkout?
Can I change the day of the month my {plan} subscription renews?
Will I get a receipt by email every time {plan} renews?
[technical high]
My {product} went offline along with every other device in the house and nothing brings it back.
The {camera} stopped recording and the footage from the last {days} days is just gone.
The app crashes the moment I open it, so I can't see any cameras. Our shop is unmonitored.
The Kestrel Smart Lock won't respond at all and we are locked out of our own house.
After the latest firmware update my {camera} keeps rebooting and all my recordings were wiped.
None of the {n} cameras in our office have shown a picture since last night. Full outage?
[technical medium]
My {product} drops off the wifi a few times a day and then comes back on its own.
Notifications from the {product} arrive several minutes late.
The firmware update on my {product} failed once and I'm not sure it installed properly.
The {product} keeps asking me to pair it with the hub again every couple of days.
The {product} shows the wrong time in its event history since the clocks changed.
The night vision picture from the {camera} looks washed out since last week.
[technical low]
Is there a way to turn off the status light on the {product}?
Does the {product} work with Google Home or only with Alexa?
How do I set a schedule so the {product} only sends alerts at night?
Is a dark mode planned for the Kestrel app?
How many devices can I connect to one Kestrel Hub?
Can the {camera} be mounted upside down, and does the picture flip automatically?
[account high]
Someone changed the password and email on my account and I can't log in. I think I was hacked.
There is a user in my home I don't know and they can watch my cameras. Please remove them.
I deleted my account by mistake and all the recordings for my business are gone.
I lost the phone with my two-factor codes and I'm locked out of the account that runs our shop.
My ex still has access to my account and can watch the cameras inside my flat.
Our admin left the company and nobody can log in to our {plan} account to see the cameras.
[account medium]
The password reset email never arrives. I've tried {n} times and checked spam.
I'd like to change the email on my account to {email} but the app shows an error.
I have two accounts by mistake and want to merge them so all my devices are in one place.
The verification code expires before it even reaches my phone.
I invited my partner to our home but the invitation link says it has expired.
My account shows the wrong country and I can't change it myself.
[account low]
How do I change the name shown on my account?
Can I add a family member to the home without giving them admin rights?
What happens to my recordings if I close my account one day?
How do I stop the marketing emails but keep the security alerts?
Is it possible to log in with a passkey instead of a password?
Where can I download a copy of the data you keep about my account?
[shipping high]
Tracking says my {product} was delivered {days} days ago but it never arrived. Nobody has it.
I received an empty box instead of the {product} from order {order}.
Order {order} went to my old address even though I changed it. That's {amount} of equipment!
The Kestrel Doorbell arrived smashed and its battery looks swollen. I'm afraid to touch it.
I need the {product} for a handover tomorrow and order {order} still hasn't shipped.
The courier left my package on the street and it was stolen. Order {order}.
[shipping medium]
The tracking for order {order} hasn't updated in {days} days.
My {product} arrived without the mounting kit.
Order {order} shows a delay and I'd like to know the new delivery date.
Can I change the delivery address for order {order}? It hasn't shipped yet.
I ordered two units of the {product} but only one arrived.
The box for order {order} was dented and the {product} rattles a bit, though it seems to work.
[shipping low]
Do you ship to {country}?
How long does standard shipping usually take?
Can I choose the delivery day for my {product}?
Do you offer gift wrapping for orders?
Is it possible to pick an order up somewhere instead of having it delivered?
Which courier do you use for deliveries to {country}?
[other high]
I'm writing on behalf of my lawyer about the injury your installer caused. Who handles claims?
This is a formal data deletion request under GDPR. You have a legal deadline to respond.
The power adapter of my {camera} melted and nearly started a fire.
I'm a journalist and my story on a security flaw in your cameras runs tomorrow. Any statement?
Your installer damaged our wall and left. A manager calls me today or I take legal action.
I will file a complaint with the consumer protection agency unless someone replies to me.
[other medium]
I waited over an hour on the phone support line and nobody answered.
Your installer missed our appointment on {month} {day} without telling us.
I'd like to give feedback on how confusing the {product} setup guide is.
The agent I spoke to yesterday promised a callback that never happened.
Could someone from your business team contact me about fitting out {n} shops with cameras?
Your chat assistant keeps sending me in circles and I'd like to talk to a real person.
[other low]
Just wanted to say the {product} has been great, thanks to your team.
Do you have any job openings in customer support?
Do you have a recycling program for old devices?
Are you planning to make a Kestrel smoke detector?
Is there a user forum where owners share tips?
I'm a teacher and would love to use a {product} in a class demo. Do you have any material?
""")

_PARTS = _sections("""
[opening]
Hi, | Hello, | Hi there, | Hello support team, | Good morning, | Hey, | Dear Kestrel support,
[context]
I've had my {product} for about {months} months. | My order number is {order}.
My account email is {email}. | I'm on the {plan} plan. | I've been a customer since {year}.
We have {n} of your devices at home. | Writing from my phone, sorry for typos.
[tone high]
This is urgent. | Please escalate this. | I need this sorted out today.
We are losing business every hour this goes on. | Please call me back as soon as possible.
This is completely unacceptable. | I have already written to you twice about this. | URGENT!!
[tone medium]
Could you look into this? | Please let me know what to do next. | Any help is appreciated.
What are my options here? | It's getting a bit annoying, to be honest.
[tone low]
No rush at all. | Whenever you get a chance. | Not urgent, just curious.
Just wondering. | Thanks in advance, no hurry. | Not a big deal, but I thought I'd ask.
[closing]
Thanks, | Thank you, | Regards, | Cheers, | Best, | Kind regards, | Many thanks,
[name]
Anna | Tom | Priya | Lukas | Maria | James | Sofia | Ahmed | Chen | Olivia | Marco | Fatima
Noah | Elena | Kofi | Julia | Mateo | Hannah | Yusuf | Grace | Pavel | Aiko | Daniel | Ines
""")
TICKET_PARTS = {key: [p for line in v for p in line.split(" | ")] for key, v in _PARTS.items()}
TONE_CHANCE = {"high": 0.7, "medium": 0.4, "low": 0.6}
MONTHS = "January February March April May June July August September October November December"
MONTHS = MONTHS.split()


def _slots(rng: random.Random) -> dict[str, object]:
    name = rng.choice(TICKET_PARTS["name"])
    plan, price = rng.choice(PLAN_PRICES)
    return {
        "product": rng.choice(list(PRODUCTS)),
        "camera": rng.choice(["Kestrel Cam 2", "Kestrel Cam Outdoor", "Kestrel Doorbell"]),
        "plan": plan,
        "price": price,
        "amount": f"${rng.choice([p['price'] for p in PRODUCTS.values()])}.00",
        "order": f"KO-{rng.randint(100000, 999999)}",
        "email": f"{name.lower()}.{rng.randint(1, 99)}@example.com",
        "days": rng.randint(3, 14),
        "months": rng.randint(2, 30),
        "year": rng.randint(2019, 2024),
        "n": rng.randint(3, 12),
        "country": rng.choice(["Canada", "Norway", "Ireland", "Poland", "Australia", "Mexico"]),
        "month": rng.choice(MONTHS),
        "day": rng.randint(2, 28),
        "name": name,
    }


def _typo(rng: random.Random, text: str) -> str:
    """Swap two letters of one longer lowercase word (product names stay intact)."""
    words = text.split(" ")
    candidates = [i for i, w in enumerate(words) if len(w) >= 6 and w.isalpha() and w.islower()]
    if not candidates:
        return text
    i = rng.choice(candidates)
    w, j = words[i], rng.randint(1, len(words[i]) - 3)
    words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2 :]
    return " ".join(words)


def _ticket(rng: random.Random, category: str, priority: str) -> str:
    parts, slots = TICKET_PARTS, _slots(rng)
    problem = rng.choice(PROBLEMS[f"{category} {priority}"])
    body = [problem]
    # Context never repeats a slot the problem already names ("order KO-1 ... order KO-1").
    used = set(re.findall(r"{\w+}", problem))
    contexts = [c for c in parts["context"] if not used & set(re.findall(r"{\w+}", c))]
    if rng.random() < 0.45:
        body.insert(rng.choice([0, 1]), rng.choice(contexts))
    if rng.random() < TONE_CHANCE[priority]:
        body.append(rng.choice(parts[f"tone {priority}"]))
    text = " ".join(body)
    if rng.random() < 0.65:
        text = rng.choice(parts["opening"]) + rng.choice(["\n", "\n\n"]) + text
    text = text.format(**slots)
    if rng.random() < 0.15:
        text = _typo(rng, text)
    if rng.random() < 0.06:
        text = text.lower().rstrip(".!")
    ending = rng.random()
    if ending < 0.45:
        text += f"\n\n{rng.choice(parts['closing'])}\n{slots['name']}"
    elif ending < 0.65:
        text += f" - {slots['name']}"
    return text


def make_triage(seed: int = 7) -> tuple[list[dict], list[dict]]:
    """Alpaca rows, balanced over category x priority; validation messages never in train."""
    rng = random.Random(seed)
    train, validation, seen = [], [], set()
    for category in CATEGORIES:
        for priority in PRIORITIES:
            output = json.dumps({"category": category, "priority": priority})
            messages: list[str] = []
            while len(messages) < TICKETS_PER_CELL:
                message = _ticket(rng, category, priority)
                if message not in seen:
                    seen.add(message)
                    messages.append(message)
            for i, message in enumerate(messages):
                row = {"instruction": TRIAGE_INSTRUCTION, "input": message, "output": output}
                (validation if i < VALIDATION_PER_CELL else train).append(row)
    rng.shuffle(train)
    rng.shuffle(validation)
    return train, validation


# ---------------------------------------------------------------- (b) domain corpus

HANDBOOK = _sections("""
[company]
Kestrel Home makes cameras, doorbells, locks, thermostats and sensors for homes and small
  businesses. It was founded in 2018 in Rotterdam and has offices in Austin and Krakow. This
  knowledge base is the internal reference for its support agents.
All Kestrel devices are managed in the Kestrel app. Cameras and the doorbell connect to Wi-Fi
  directly; the lock and the sensors talk to the Kestrel Hub, which must be within 10 metres.
Kestrel Plus costs $4.99 a month or $49 a year and keeps 30 days of video for up to five
  cameras. Kestrel Plus Family costs $9.99 a month and keeps 60 days for any number of cameras.
Kestrel Pro is the plan for businesses: $29 a month per site, 90 days of video, several admins,
  an audit log of who viewed which camera, and a 24/7 phone line for emergencies.
Without a plan, customers get live view, notifications and 24 hours of event clips. Features
  that need cloud storage show a small Plus badge in the app.
[policy]
Priority is high for an outage, lost recordings, a double charge, a hacked account, a safety
  risk or a legal threat; low for questions and feedback; medium for everything else.
High-priority tickets get a first reply within one hour during opening hours. Medium tickets
  are answered within one business day and low-priority tickets within three business days.
Agents never ask a customer for their password or full card number. To verify identity, send
  a one-time code to the account's email address from the admin console.
A double charge is refunded at once, without waiting for the bank to settle it. Agents can
  refund up to $200 themselves; larger refunds need a team lead's approval.
When an account may be compromised, the agent signs out all sessions, resets the password,
  removes unknown members and asks the owner to turn on two-factor authentication.
When a customer reports heat, smoke, melting or a swollen battery, the agent tells them to stop
  using the device and escalates to the product safety team the same hour.
Legal threats, press requests and data protection requests go to the legal queue. The agent
  confirms receipt, promises no outcome and does not discuss the case further.
If a parcel is marked delivered but missing, wait 48 hours, then open a carrier claim and ship
  a replacement at once for orders under $300; larger orders wait for the carrier's answer.
Replies should be short and polite: confirm the problem, give the next step, and say when the
  customer will hear from us. Avoid blaming the customer and avoid long apologies.
[categories]
Billing tickets are about charges, invoices, refunds, payment methods and plan prices.
Technical tickets are about devices, the app, recordings, notifications and firmware.
Account tickets are about logins, passwords, two-factor codes, members and personal data.
Shipping tickets are about orders in transit, deliveries, missing items and damage in the box.
Other tickets cover installers, complaints about support, legal and press requests, and praise.
[glossary]
Event clip: a short video recorded when a camera or doorbell detects motion, a person or a ring.
Home: a group of devices and members in the app; one account can belong to several homes.
Member: someone invited to a home who can use its devices but not change its settings.
Admin: a member who can add devices, invite people and change billing for a home.
Automation: a rule such as "when the front door opens after 22:00, turn on the hall light".
Home mode: a mode in which indoor cameras stop recording and their privacy shutters close.
Away mode: a mode in which every camera records and the sensors raise alarms.
Activity zone: an area of the camera picture where motion counts; motion elsewhere is ignored.
Sync button: the button on battery devices that wakes them and starts pairing.
Kestrel Chime: a plug-in speaker that plays the doorbell chime and repeats the Wi-Fi signal.
Matter: an open smart-home standard that lets the hub work with Apple Home and other apps.
Admin console: the internal tool agents use to look up accounts, orders and devices.
Order number: the KO- reference on every order confirmation, used for shipping and refunds.
Serial number: the code printed on each device and shown under Device settings > About.
RMA: a return authorisation created in the admin console before a faulty device is replaced.
[incidents]
live view did not load in the app | an expired certificate on the video relay | the certificate
  was renewed and expiry alerts now fire 30 days ahead
notifications arrived up to 20 minutes late | a queue that filled after a traffic spike | the
  queue was scaled out and now grows automatically
logins failed with an unknown error | a faulty release of the sign-in service | the release was
  rolled back and sign-in changes now reach 5 percent of users first
event clips were missing from the history | a storage node that ran out of disk | the clips were
  restored from replicas and disk alerts now fire at 80 percent
automations ran an hour late | an outdated time zone table | the table was updated and is now
  checked every week
firmware updates stopped at 60 percent | a broken download mirror | the mirror was removed and
  downloads now verify each file's checksum
the app showed every device as offline | a DNS change that pointed to the wrong servers | the
  change was reverted and DNS changes now need a second reviewer
""")
FIXES = [
    "fixes a rare case where the device showed as offline although it was working",
    "improves Wi-Fi reconnection after a router restart",
    "shortens the time the device needs to reappear in the app after a power cut",
    "fixes wrong times in the event history after daylight saving changes",
    "makes the firmware download about a third smaller",
    "closes a security issue reported through the Kestrel bug bounty programme",
    "lowers standby power use",
]
REGIONS = ["Europe", "North America", "the UK", "all regions"]


def _product_paragraphs(rng: random.Random, name: str, p: dict[str, str]) -> list[str]:
    paragraphs = [
        f"The {name} (model {p['code']}) is {p['role']}. It sells for ${p['price']} and, like "
        "every Kestrel device, has a two-year warranty.",
        f"The {name} {p['power']}. The app shows its power state under Device settings.",
        f"To set up the {name}, {p['setup']}. Setup needs the Kestrel app and an account.",
        f"To factory reset the {name}, {p['reset']}. It then restarts in setup mode and must be "
        "added again; automations that used it are paused, not deleted.",
        f"Status light on the {name}: {p['lights']}.",
        f"If the {name} shows as offline, {p['offline']}. Before escalating, agents ask for "
        "the firmware version under Device settings > About.",
        f"The {name} {p['compat']}. Voice assistants are linked in the app under Integrations.",
        f"Warranty claims for the {name} start with the serial number and a short video of the "
        "fault. The agent creates an RMA in the admin console, the replacement ships first, and "
        "the customer returns the faulty unit within 14 days with the prepaid label.",
        f"Ordering: the {name} is article {p['code']} in the shop and the admin console. Spare "
        f"parts and mounts for it use the same code with a suffix, such as {p['code']}-M.",
    ]
    month = rng.randint(2022 * 12, 2023 * 12)
    major = rng.randint(2, 5)
    for minor, feature in enumerate(p["features"].split("; "), start=1):
        month += rng.randint(2, 6)
        paragraphs.append(
            f"Firmware {major}.{minor}.{rng.randint(0, 3)} for the {name} came out in "
            f"{MONTHS[month % 12]} {month // 12}. It {feature} and {rng.choice(FIXES)}. "
            "Updates install automatically at night, or at once from Device settings > Firmware."
        )
    return paragraphs


def make_corpus(seed: int = 11) -> str:
    """About 150 knowledge-base paragraphs, separated by blank lines."""
    rng = random.Random(seed)
    paragraphs = list(HANDBOOK["company"])
    for name, facts in PRODUCTS.items():
        paragraphs += _product_paragraphs(rng, name, facts)
    paragraphs += HANDBOOK["categories"] + HANDBOOK["policy"]
    paragraphs += [f"Customers often ask: {q} {a}" for q, a, _ in POLICY_QA]
    paragraphs += HANDBOOK["glossary"]
    incidents = HANDBOOK["incidents"]
    for number, line in enumerate(incidents * 3):
        symptom, cause, fix = line.split(" | ")
        if number < len(incidents):
            region, aftermath = rng.choice(REGIONS), f"Afterwards {fix}."
        else:  # the same fault again, somewhere the fix had not been rolled out to yet
            region = rng.choice(REGIONS[:-1])  # not "all regions"
            aftermath = (
                f"It repeated INC-{2001 + number % len(incidents)} before the fix got there."
            )
        paragraphs.append(
            f"Incident INC-{2001 + number}: for {rng.randint(12, 140)} minutes, {symptom} for "
            f"customers in {region}. The cause was {cause}. {aftermath}"
        )
    return "\n\n".join(paragraphs) + "\n"


# ---------------------------------------------------------------- (c) preference pairs

QUESTIONS = {
    "reset": ["How do I factory reset my {name}?", "What's the way to reset the {name}?"],
    "offline": ["My {name} shows as offline in the app. What should I do?"],
    "power": ["How is the {name} powered?", "Does the {name} need batteries or a cable?"],
}
ANSWERS = {
    "reset": "To factory reset your {name}, {fact}. It then restarts in setup mode, so add it "
    "again with Add device in the Kestrel app.",
    "offline": "If your {name} shows as offline, {fact}.",
    "power": "The {name} {fact}.",
}
CHOSEN_OPEN = ["", "", "Happy to help! ", "Thanks for reaching out. ", "Good question. "]
CHOSEN_CLOSE = ["", "", " Let us know if anything else comes up.", " Hope that helps!"]
VERBOSE_OPEN = [
    "Thank you so much for reaching out to Kestrel Home support today! We truly value you as a "
    "customer and completely understand how important this is to you. ",
    "Great question, and thank you for your patience while we looked into this for you! "
    "Before we answer, we want to say how much we appreciate you choosing Kestrel Home. ",
]
VERBOSE_CLOSE = [
    " We hope this information has been helpful. Please do not hesitate to contact us again at "
    "any time if you have any further questions, comments or concerns. Have a wonderful day!",
    " To sum up, and to repeat the most important part once more: {answer} We wish you a "
    "pleasant experience with all of your Kestrel devices!",
]
REJECTED = {
    "rude": [
        "Ugh. {answer}",
        "{answer} Next time please read the manual before writing to us.",
        "This is all in the FAQ. Look it up yourself.",
        "{answer} It's really not that hard.",
    ],
    "unhelpful": [
        "I'm not sure, sorry. Maybe try searching online?",
        "Please contact support for help with this.",
        "That depends on a lot of factors, so I can't really say.",
        "Have you tried turning it off and on again?",
    ],
    "wrong": ["{wrong}", "Thanks for asking! {wrong}", "Good question. {wrong}"],
    "verbose": [o + "{answer}" + c for o in VERBOSE_OPEN for c in VERBOSE_CLOSE],
}


def _scenarios(rng: random.Random) -> list[tuple[str, str, str]]:
    """(question, correct answer, wrong answer): product facts, then the policy questions."""
    scenarios = []
    for name, p in PRODUCTS.items():
        for kind, questions in QUESTIONS.items():
            # The wrong answer states another product's fact under this product's name.
            other = rng.choice([o for o in PRODUCTS.values() if o[kind] != p[kind]])
            answer = ANSWERS[kind].format(name=name, fact=p[kind])
            wrong = ANSWERS[kind].format(name=name, fact=other[kind])
            scenarios.append((rng.choice(questions).format(name=name), answer, wrong))
    return scenarios + POLICY_QA


def make_preferences(seed: int = 13) -> list[dict]:
    """Chosen: polite, concise, correct. Rejected: rude, unhelpful, wrong or verbose."""
    rng = random.Random(seed)
    rows = []
    for question, answer, wrong in _scenarios(rng):
        for templates in REJECTED.values():
            rows.append(
                {
                    "prompt": rng.choice(["", "", "Hi! ", "Hello, quick question. "]) + question,
                    "chosen": rng.choice(CHOSEN_OPEN) + answer + rng.choice(CHOSEN_CLOSE),
                    "rejected": rng.choice(templates).format(answer=answer, wrong=wrong),
                }
            )
    rng.shuffle(rows)
    return rows


# ---------------------------------------------------------------- writing


def _jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def write_samples(out_dir: str | Path = DEFAULT_OUT) -> list[Path]:
    """Write every sample dataset under out_dir; returns the paths written."""
    train, validation = make_triage()
    files = {
        "triage/train.jsonl": _jsonl(train),
        "triage/validation.jsonl": _jsonl(validation),
        "domain/corpus.txt": make_corpus(),
        "preferences/pairs.jsonl": _jsonl(make_preferences()),
    }
    written = []
    for relative, text in files.items():
        path = Path(out_dir) / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="folder to write into")
    for path in write_samples(parser.parse_args(argv).out):
        print(path)


if __name__ == "__main__":
    main()
