"""The catalogue's categories: their share, price band, margin band, weights, brands and product names.

Brands are invented; prices sit on a ladder of charm prices (x.99), as shop prices do.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Shop prices in cents, low to high: each category draws from a band of this ladder.
PRICE_LADDER: tuple[int, ...] = (
    199, 299, 399, 499, 599, 699, 799, 899, 999, 1199, 1299, 1499, 1699, 1999, 2499, 2999, 3499, 3999,
    4499, 4999, 5999, 6999, 7999, 8999, 9999, 11999, 12999, 14999, 17999, 19999, 22999, 24999, 29999,
    34999, 39999, 44999, 49999, 59999, 69999, 79999, 89999, 99999, 119999, 149999, 179999, 199999,
)


@dataclass(frozen=True)
class Category:
    """A product category and the ranges its products are drawn from."""

    code: str
    name: str
    share: float
    #: Lowest, most common and highest price in cents, each on PRICE_LADDER.
    prices: tuple[int, int, int]
    #: Gross margin (price - cost) / price, lowest and highest.
    margin: tuple[float, float]
    weight_grams: tuple[int, int]
    brands: tuple[str, ...]
    items: tuple[str, ...]
    qualifiers: tuple[str, ...]
    variants: tuple[str, ...]
    #: How a supplier of this category names its trade.
    trade: str
    #: A product's name from its brand, qualifier, item and variant.
    name_format: str = "{brand} {qualifier} {item}, {variant}"


CATEGORIES: tuple[Category, ...] = (
    Category(
        "ELC", "Electronics", 0.12, (1999, 9999, 199999), (0.12, 0.28), (50, 8000),
        ("Voltra", "Nexaline", "Quorra", "Brightwave", "Ohmstead", "Lumetric", "Kinetiq", "Arcturon"),
        ("Wireless Earbuds", "Bluetooth Speaker", "4K Monitor", "USB-C Hub", "Mechanical Keyboard", "Smartwatch",
         "Action Camera", "Power Bank", "Noise-Cancelling Headphones", "Wi-Fi Router", "Webcam", "E-Reader",
         "Gaming Mouse", "Soundbar", "Tablet"),
        ("Pro", "Max", "Lite", "Mini", "Plus", "Air", "X2", "S"),
        ("Black", "White", "Graphite", "Silver", "Midnight Blue"),
        "Electronics",
        "{brand} {item} {qualifier}, {variant}",
    ),
    Category(
        "HOM", "Home & Kitchen", 0.16, (799, 3499, 49999), (0.30, 0.50), (100, 12000),
        ("Hearthwell", "Copperleaf", "Nestory", "Oakhaven", "Kitchara", "Brimfield", "Lindenware", "Casavia"),
        ("Chef's Knife", "Cast Iron Skillet", "French Press", "Stand Mixer", "Bath Towel Set", "Table Lamp",
         "Storage Baskets", "Non-Stick Pan", "Espresso Machine", "Cutting Board", "Duvet Cover", "Air Fryer",
         "Glass Food Containers", "Dinnerware Set"),
        ("Classic", "Essential", "Premium", "Compact", "Artisan", "Everyday"),
        ("Stone Grey", "Sage", "Cream", "Charcoal", "Terracotta", "Natural Oak"),
        "Housewares",
    ),
    Category(
        "APP", "Apparel", 0.16, (999, 3999, 24999), (0.50, 0.70), (80, 1500),
        ("Northwell", "Threadline", "Marlowe & Finch", "Loomcraft", "Ashby Lane", "Veldt", "Cobalt Row", "Fernhill"),
        ("Chino Pants", "Crewneck Sweater", "Rain Jacket", "Oxford Shirt", "Denim Jeans", "Hoodie", "Wool Coat",
         "Running Shorts", "Linen Dress", "Puffer Vest", "Leather Sneakers", "Merino Socks"),
        ("Slim-Fit", "Relaxed", "Organic Cotton", "Recycled", "Lightweight", "Heritage"),
        ("Navy, M", "Black, L", "Olive, S", "Heather Grey, M", "Ecru, XL", "Burgundy, L"),
        "Garments",
    ),
    Category(
        "BTY", "Beauty & Personal Care", 0.10, (399, 1999, 12999), (0.55, 0.75), (30, 800),
        ("Lumina Botanica", "Dewlane", "Auralis", "Petalry", "Verdance", "Silkroot", "Glowmere", "Novabloom"),
        ("Face Serum", "Moisturizer", "Shampoo", "Conditioner", "Lip Balm", "Sunscreen SPF 50", "Body Wash",
         "Eye Cream", "Hair Oil", "Clay Mask", "Hand Cream"),
        ("Hydrating", "Gentle", "Revitalizing", "Fragrance-Free", "Vitamin C", "Overnight"),
        ("30 ml", "50 ml", "100 ml", "250 ml", "400 ml"),
        "Cosmetics",
    ),
    Category(
        "GRO", "Grocery & Gourmet", 0.10, (199, 699, 5999), (0.18, 0.35), (50, 3000),
        ("Harvest Hollow", "Golden Acre", "Pantry Lane", "Sunmeadow", "Brookfarm", "Olivara", "Kettle Ridge",
         "Wildgrain"),
        ("Olive Oil", "Ground Coffee", "Green Tea", "Granola", "Dark Chocolate", "Pasta Sauce", "Almond Butter",
         "Basmati Rice", "Maple Syrup", "Trail Mix", "Sea Salt Crackers"),
        ("Organic", "Extra Virgin", "Single-Origin", "Gluten-Free", "Roasted", "Classic"),
        ("250 g", "500 g", "1 kg", "12 oz", "6-Pack"),
        "Foods",
    ),
    Category(
        "SPT", "Sports & Outdoors", 0.08, (999, 4999, 99999), (0.30, 0.45), (100, 15000),
        ("Trailforge", "Summitry", "Peakline", "Stridewell", "Ironbark", "Riptide", "Basecamp", "Velocita"),
        ("Yoga Mat", "Hiking Backpack", "Tent", "Trekking Poles", "Dumbbell Set", "Water Bottle", "Cycling Helmet",
         "Sleeping Bag", "Resistance Bands", "Camping Stove", "Running Vest"),
        ("Ultralight", "All-Weather", "Trail", "Pro", "Adjustable", "Insulated"),
        ("Black", "Forest Green", "Orange", "Blue", "Sand"),
        "Sporting Goods",
    ),
    Category(
        "TOY", "Toys & Games", 0.08, (499, 2499, 19999), (0.35, 0.50), (50, 4000),
        ("Brickle", "Wonderkin", "Tumbletown", "Puzzlewick", "Starling Toys", "Jollybird", "Kiteworks",
         "Pebble & Pine"),
        ("Building Set", "Jigsaw Puzzle", "Board Game", "Plush Bear", "Wooden Train", "Art Kit", "RC Car",
         "Card Game", "Dollhouse", "Science Kit"),
        ("Deluxe", "Junior", "Classic", "Family", "Explorer", "Mini"),
        ("500 pieces", "1000 pieces", "Ages 3+", "Ages 6+", "Ages 8+"),
        "Toys",
    ),
    Category(
        "BOK", "Books", 0.08, (599, 1699, 7999), (0.25, 0.40), (100, 1500),
        ("Lanternfield Press", "Quillhouse", "Meridian Books", "Inkwell & Co.", "Bramblegate Press",
         "Halcyon House", "Foxglove Editions", "Northstar Press"),
        ("Mystery Novel", "Cookbook", "Travel Guide", "Biography", "Picture Book", "Science Fiction Novel",
         "Field Guide", "History", "Poetry Collection", "Graphic Novel"),
        ("Illustrated", "Collected", "Complete", "Pocket", "Annotated", "Bestselling"),
        ("Paperback", "Hardcover", "Large Print"),
        "Printing",
        "{qualifier} {item} ({variant}), {brand}",
    ),
    Category(
        "OFF", "Office Supplies", 0.06, (199, 1299, 39999), (0.30, 0.50), (10, 6000),
        ("Deskary", "Papercraft", "Inkline", "Clipwise", "Ledgerly", "Stapleton", "Notewell", "Foldwell"),
        ("Gel Pens", "Spiral Notebook", "Desk Organizer", "Office Chair", "Label Maker", "Stapler", "Whiteboard",
         "File Folders", "Paper Shredder", "Monitor Riser"),
        ("Ergonomic", "Heavy-Duty", "Recycled", "Compact", "Executive", "Everyday"),
        ("Black", "Blue", "Assorted", "A4", "Letter"),
        "Stationery",
    ),
    Category(
        "PET", "Pet Supplies", 0.06, (399, 1999, 14999), (0.28, 0.42), (100, 15000),
        ("Pawsome", "Whiskerly", "Furwell", "Barkley & Co.", "Tailspin", "Kibblecraft", "Purrfect Path",
         "Happy Hound"),
        ("Dry Dog Food", "Cat Litter", "Chew Toy", "Pet Bed", "Scratching Post", "Leash", "Grooming Brush",
         "Cat Treats", "Aquarium Filter", "Travel Carrier"),
        ("Grain-Free", "Durable", "Orthopedic", "Natural", "Senior", "Puppy"),
        ("Small", "Medium", "Large", "2 kg", "7 kg"),
        "Pet Products",
    ),
)
